"""Dropout whose masks come from a shared numpy schedule (alignment only), scaled as nn.Dropout scales.

The replaced layer's `mode` is kept: a port that left a dropout in `downscale_in_infer` mode still
scales differently from torch with injected masks, so the alignment check sees it. So is its mode, which
decides (model.train() and eval() reach it): a model left in eval mode, or a dropout left in the wrong mode,
drops nothing here either, as in the product.
"""
import paddle
from paddle import nn


class InjectedMaskDropout(nn.Layer):
    def __init__(self, replaced, layer, schedule):
        super().__init__()
        self.replaced = replaced
        self.layer = layer
        self.schedule = schedule

    def forward(self, x):
        if not self.replaced.training:
            return self.replaced(x)
        keep = paddle.to_tensor(self.schedule.keep_mask(self.layer, tuple(x.shape)), dtype=x.dtype)
        if self.replaced.mode == "upscale_in_train":
            return x * keep / (1.0 - self.replaced.p)
        return x * keep


def inject_dropout_masks(model, schedule):
    """Replace every nn.Dropout of `model`, numbered in forward order, by an InjectedMaskDropout."""
    dropouts = [(parent, name) for parent in model.sublayers(include_self=True)
                for name, child in parent.named_children() if isinstance(child, nn.Dropout)]
    for layer, (parent, name) in enumerate(dropouts):
        setattr(parent, name, InjectedMaskDropout(getattr(parent, name), layer, schedule))
    return model
