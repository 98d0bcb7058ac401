"""The torch side of layer-by-layer localization: walking a model's modules and watching their calls.

Mirrors paddle_layers.py; `alignment.layers.side` is written once against the two.
"""


def named_layers(model):
    """(name, module) of the model itself ("") and of every module inside it."""
    return model.named_modules()


def child_names(layer):
    return [name for name, _ in layer.named_children()]


def own_parameter_names(layer):
    return [name for name, _ in layer.named_parameters(recurse=False)]


def watch(layer, record):
    """Call record(input, output) after every call of `layer`; return a handle with remove()."""
    return layer.register_forward_hook(lambda _, inputs, output: record(inputs[0], output))
