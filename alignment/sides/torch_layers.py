"""The torch side of layer-by-layer localization: walking a model's modules, watching their calls and
the functions its code calls, describing each operator in the suite's (torch's) terms.

Mirrors paddle_layers.py; `alignment.layers.worker` is written once against the two.
"""
import os

# torch is imported inside the functions: a process that only names this module (a test defining a pair,
# read by the suite's main process) does not load the framework

# Functions a model's own code calls between its layers: every public function of torch.nn.functional (its
# own and the ATen operators it re-exports, such as avg_pool2d and conv2d, defined in these modules; not its
# helpers from typing or torch.overrides), and these of torch and of its tensors ("+" of residuals,
# torch.flatten before the classifier, the views and transposes of a channel shuffle, a mean as the global
# pool); Tensor.contiguous is not one: it moves no value, and the unit after it takes its copy as an input
# of its own
_FUNCTIONAL_MODULES = ("torch.nn.functional", "torch", "torch._C._nn")
_TENSOR_FUNCTIONS = {"torch": ("flatten", "cat", "concat", "add", "mul", "mean", "squeeze", "reshape", "transpose",
                               "permute", "sigmoid", "tanh"),
                     "torch.Tensor": ("__add__", "__radd__", "__iadd__", "__mul__", "__rmul__", "__matmul__", "view",
                                      "reshape", "flatten", "transpose", "permute", "mean")}


def code_dirs():
    """(the framework's folders, the model zoo's folders inside them): a source line is looked for outside
    the first, except in the second, which hold model code like the user's own."""
    import torch
    import torchvision

    return (tuple(os.path.dirname(package.__file__) for package in (torch, torchvision)),
            (os.path.join(os.path.dirname(torchvision.__file__), "models"),))


def layer_class():
    import torch

    return torch.nn.Module


def named_layers(model):
    """(name, module) of the model itself ("") and of every module inside it."""
    return model.named_modules()


def child_names(layer):
    return [name for name, _ in layer.named_children()]


def own_parameter_names(layer):
    return [name for name, _ in layer.named_parameters(recurse=False)]


def own_buffers(layer):
    """{name: values} of the module's own buffers (BatchNorm's running statistics)."""
    return {name: buffer.detach().cpu().numpy().copy() for name, buffer in layer.named_buffers(recurse=False)}


def model_tensor_ids(model):
    """The ids of the model's parameters and buffers: a function's arguments that are the model's own,
    not values flowing through it."""
    return {id(tensor) for tensor in (*model.parameters(), *model.buffers())}


def watch(layer, record):
    """Call record(input, output) after every call of `layer`; return a handle with remove()."""
    return layer.register_forward_hook(lambda _, inputs, output: record(inputs[0], output))


def watch_entry(layer, enter):
    """Call enter() before every call of `layer`; return a handle with remove()."""
    return layer.register_forward_pre_hook(lambda *_: enter())


def watched_functions():
    """(owner, name) of every function whose calls from a model's own code are recorded."""
    import torch
    import torch.nn.functional as functional

    public = [(functional, name) for name in dir(functional) if not name.startswith("_")
              and callable(getattr(functional, name)) and not isinstance(getattr(functional, name), type)
              and getattr(getattr(functional, name), "__module__", "") in _FUNCTIONAL_MODULES]
    owners = {"torch": torch, "torch.Tensor": torch.Tensor}
    return public + [(owners[owner], name) for owner, names in _TENSOR_FUNCTIONS.items() for name in names]


def is_framework_layer(layer):
    """A layer of torch.nn itself: what its forward calls is how torch computes it, not model code."""
    return type(layer).__module__.startswith("torch.nn.")


def is_flowing(value):
    """A tensor the loss's gradient flows through (not a constant, such as a dropout mask)."""
    import torch

    return isinstance(value, torch.Tensor) and value.requires_grad


def operator_attributes(layer):
    """The module's settings (stride, padding, ceil_mode, eps, momentum...) by torch's names."""
    return {name: value for name, value in vars(layer).items()
            if not name.startswith("_") and name != "training" and isinstance(value, (bool, int, float, str, tuple))}
