"""The Paddle side of layer-by-layer localization: walking a model's layers and watching their calls.

Mirrors torch_layers.py; `alignment.layers.side` is written once against the two.
"""


def named_layers(model):
    """(name, layer) of the model itself ("") and of every layer inside it."""
    return model.named_sublayers(include_self=True)


def child_names(layer):
    return [name for name, _ in layer.named_children()]


def own_parameter_names(layer):
    return [name for name, _ in layer.named_parameters(include_sublayers=False)]


def watch(layer, record):
    """Call record(input, output) after every call of `layer`; return a handle with remove()."""
    return layer.register_forward_post_hook(lambda _, inputs, output: record(inputs[0], output))
