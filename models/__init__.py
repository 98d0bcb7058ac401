"""The models' key layouts, framework-free: what the converter (weights_convert), the products and the
alignment suite all import, so that none of them reaches up into another.

A checkpoint's Layout (greedyhash_common.state_dicts.layout) names each torch key's Paddle key, the Linear
weights stored transposed, and every shape. GreedyHash's layout follows from the file's keys (its own
checkpoint or the ImageNet AlexNet backbone: greedyhash_common.state_dicts.layout.detect_layout); the
ResNets' are written out by their architecture's rule (models/resnet.py).
"""
from . import resnet

GREEDYHASH = "greedyhash"
MODELS = (GREEDYHASH, *resnet.ARCHITECTURES)


def layout_named(name):
    """The Layout of model `name`'s checkpoints, or None for GreedyHash's: it follows from the file's keys."""
    return None if name == GREEDYHASH else resnet.layout(name)
