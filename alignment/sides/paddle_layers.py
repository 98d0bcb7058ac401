"""The Paddle side of layer-by-layer localization: walking a model's layers, watching their calls and
the functions its code calls, describing each operator in the suite's (torch's) terms.

Mirrors torch_layers.py; `alignment.layers.worker` is written once against the two.
"""
import os

# paddle is imported inside the functions: a process that only names this module (a test defining a
# pair, read by the suite's main process) does not load the framework

# Functions a model's own code calls between its layers: every function paddle.nn.functional exports, and
# these of paddle and of its tensors (as torch_layers.py's: residuals, flattens, a channel shuffle's
# reshapes and transposes, a mean as the global pool)
_TENSOR_FUNCTIONS = {"paddle": ("flatten", "concat", "add", "multiply", "mean", "squeeze", "reshape", "transpose",
                                "permute", "sigmoid", "tanh"),
                     "paddle.Tensor": ("__add__", "__radd__", "__mul__", "__rmul__", "__matmul__", "view", "reshape",
                                       "flatten", "transpose", "permute", "mean")}
# Paddle's names of settings torch names otherwise, and Paddle's conventions turned into torch's:
# BatchNorm's momentum is the old average's share in Paddle, the new batch's in torch
_TORCH_NAMES = {"ksize": "kernel_size", "epsilon": "eps", "return_mask": "return_indices"}
_TORCH_CONVENTIONS = {("BatchNorm", "momentum"): lambda momentum: 1 - momentum}
# Paddle's bookkeeping, not settings of the operator
_NOT_SETTINGS = {"full_name", "built", "dtype", "init_in_dynamic_mode", "cast_to_low_precision", "name",
                 "param_attr", "weight_attr", "bias_attr", "device", "helper", "training"}


def code_dirs():
    """(the framework's folders, the model zoo's folders inside them): a source line is looked for outside
    the first, except in the second, which hold model code like the user's own."""
    import paddle

    return (os.path.dirname(paddle.__file__),), (os.path.join(os.path.dirname(paddle.__file__), "vision", "models"),)


def layer_class():
    import paddle

    return paddle.nn.Layer


def named_layers(model):
    """(name, layer) of the model itself ("") and of every layer inside it."""
    return model.named_sublayers(include_self=True)


def child_names(layer):
    return [name for name, _ in layer.named_children()]


def own_parameter_names(layer):
    return [name for name, _ in layer.named_parameters(include_sublayers=False)]


def own_buffers(layer):
    """{name: values} of the layer's own buffers and the parameters no optimizer trains (BatchNorm's running
    statistics are such parameters in Paddle, buffers in torch)."""
    untrained = [(name, parameter) for name, parameter in layer.named_parameters(include_sublayers=False)
                 if not parameter.trainable]
    return {name: value.numpy().copy()
            for name, value in (*layer.named_buffers(include_sublayers=False), *untrained)}


def model_tensor_ids(model):
    """The ids of the model's parameters and buffers: a function's arguments that are the model's own,
    not values flowing through it."""
    return {id(tensor) for tensor in (*model.parameters(), *model.buffers())}


def watch(layer, record):
    """Call record(input, output) after every call of `layer`; return a handle with remove()."""
    return layer.register_forward_post_hook(lambda _, inputs, output: record(inputs[0], output))


def watch_entry(layer, enter):
    """Call enter() before every call of `layer`; return a handle with remove()."""
    return layer.register_forward_pre_hook(lambda *_: enter())


def watched_functions():
    """(owner, name) of every function whose calls from a model's own code are recorded."""
    import paddle
    import paddle.nn.functional as functional

    public = [(functional, name) for name in getattr(functional, "__all__", ())
              if callable(getattr(functional, name, None))]
    owners = {"paddle": paddle, "paddle.Tensor": paddle.Tensor}
    return public + [(owners[owner], name) for owner, names in _TENSOR_FUNCTIONS.items() for name in names]


def is_framework_layer(layer):
    """A layer of paddle.nn itself: what its forward calls is how Paddle computes it, not model code."""
    return type(layer).__module__.startswith("paddle.nn.")


def is_flowing(value):
    """A tensor the loss's gradient flows through (not a constant, such as a dropout mask)."""
    import paddle

    return isinstance(value, paddle.Tensor) and not value.stop_gradient


def operator_attributes(layer):
    """The layer's settings (stride, padding, ceil_mode, eps, momentum...) by torch's names and in torch's
    conventions."""
    attributes = {}
    for name, value in vars(layer).items():
        name = _TORCH_NAMES.get(name.lstrip("_"), name.lstrip("_"))
        if name in _NOT_SETTINGS or not isinstance(value, (bool, int, float, str, tuple, list)):
            continue
        convention = next((change for (kind, setting), change in _TORCH_CONVENTIONS.items()
                           if setting == name and kind in type(layer).__name__), None)
        attributes[name] = convention(value) if convention else value
    return attributes
