"""Dropout whose masks come from a shared numpy schedule (alignment only), scaled as nn.Dropout scales.

The replaced layer is kept as a sublayer and its mode decides (model.train() and eval() reach it), so a
model left in eval mode, or a dropout left in the wrong mode, drops nothing here either, as in the product.
"""
import torch
from torch import nn


class InjectedMaskDropout(nn.Module):
    def __init__(self, replaced, layer, schedule):
        super().__init__()
        self.replaced = replaced
        self.layer = layer
        self.schedule = schedule

    def forward(self, x):
        if not self.replaced.training:
            return self.replaced(x)
        keep = torch.from_numpy(self.schedule.keep_mask(self.layer, tuple(x.shape))).to(x.device, x.dtype)
        return x * keep / (1.0 - self.replaced.p)


def inject_dropout_masks(model, schedule):
    """Replace every nn.Dropout of `model`, numbered in forward order, by an InjectedMaskDropout."""
    dropouts = [(parent, name) for parent in model.modules()
                for name, child in parent.named_children() if isinstance(child, nn.Dropout)]
    for layer, (parent, name) in enumerate(dropouts):
        setattr(parent, name, InjectedMaskDropout(getattr(parent, name), layer, schedule))
    return model
