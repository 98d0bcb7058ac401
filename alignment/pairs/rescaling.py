"""Rescaling a seeded torch model to given activation spreads (the torch process only): the `rescaled` weight
set, GreedyHash's (alignment/pairs/greedyhash/weight_sets.py) and the one the suite proposes to a pair without
its own (alignment.pairs.base: `--weight-sets seeded,rescaled`).

Each layer of the kinds rescaled, in forward order, has its weight and bias multiplied by one factor so that
its outputs on the batch have a given standard deviation: every ReLU keeps its on/off pattern at that layer,
only magnitudes change, and each layer still computes a seeded-random function, now over a trained network's
value ranges (ReLU6 clipping, saturating activations and the like are reached).
"""
import numpy as np

# The spread of every rescaled layer's outputs in the set proposed to any pair: GreedyHash's for its
# convolutions and classifier (alignment/pairs/greedyhash/weight_sets.py), which puts the largest ReLU inputs
# of a batch well beyond ReLU6's clamp
PROPOSED_STD = 4.0


def rescale(model, images, target_std, kinds):
    """Rescale `model` in place on `images` (numpy NCHW), each layer of `kinds` to target_std(its name); return
    {layer: factor}. The model is in eval mode (a BatchNorm normalizes with its running statistics).

    In one pass: each layer, in forward order, is measured on its input, rescaled, and run again on that same
    input, so the layers after it see what a pass of the network rescaled so far gives them (the values of a
    pass per layer, at the cost of one pass and one more call of each layer)."""
    import torch

    model.eval()
    batch = torch.from_numpy(np.ascontiguousarray(images)).to(next(model.parameters()).dtype)
    names = {module: name for name, module in model.named_modules()
             if isinstance(module, kinds) and getattr(module, "weight", None) is not None}
    factors = {}

    def rescale_layer(module, inputs, output):
        name = names[module]
        factors[name] = target_std(name) / output.std().item()
        module.weight.mul_(factors[name])
        if module.bias is not None:
            module.bias.mul_(factors[name])
        return module.forward(*inputs)  # forward, not the call: no hook again

    handles = [module.register_forward_hook(rescale_layer) for module in names]
    try:
        with torch.no_grad():
            model(batch)
    finally:
        for handle in handles:
            handle.remove()
    return factors


def proposed_kinds():
    """The layers the proposed set rescales: those with a weight and bias that scale their outputs (a
    normalization's affine parameters scale what it hands on, whatever its input)."""
    from torch import nn

    return (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)


def proposed_rescaled_state(model, seeded_state, images):
    """The torch `model` holding `seeded_state`, rescaled in float64 on `images` to PROPOSED_STD at every layer of
    proposed_kinds(): its state, in float64."""
    import torch

    model.load_state_dict({key: torch.from_numpy(value) for key, value in seeded_state.items()}, strict=True)
    model = model.double()
    rescale(model, images, lambda name: PROPOSED_STD, proposed_kinds())
    return {key: value.detach().cpu().numpy() for key, value in model.state_dict().items()}
