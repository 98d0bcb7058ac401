"""What every pair's torch side does with tensors, parameters, buffers and optimizers.

Mirrors paddle_tensors.py. torch names are the suite's names, and torch's layout its layout.
"""
import numpy as np
import torch


def seed_framework(seed):
    """Seed the framework's own generator (its dropout masks when none are injected)."""
    torch.manual_seed(seed)


def tensor(array, requires_grad=False):
    return torch.from_numpy(np.ascontiguousarray(array)).requires_grad_(requires_grad)


def numpy(value):
    return value.detach().cpu().numpy()


def gradients(output, inputs):
    """d output / d input for each input, keeping the graph for a later backward."""
    return [numpy(grad) for grad in torch.autograd.grad(output, inputs, retain_graph=True)]


def backward(total):
    total.backward()


def gradient_of(value):
    """The gradient a backward left in a tensor made with requires_grad (paddle_tensors.gradient_of says why
    the suite takes input gradients this way)."""
    return numpy(value.grad)


def cast(value, dtype):
    return value.to(getattr(torch, dtype))


def optimizer_step(optimizer):
    optimizer.step()
    optimizer.zero_grad()


def named_parameters(model):
    """(torch name, parameter) pairs."""
    return model.named_parameters()


def torch_layout(name, array):  # noqa: ARG001 (paddle_tensors' counterpart transposes by name)
    """An array of parameter `name` in torch's layout: already so on this side."""
    return array


def parameter_gradients(model):
    """Gradients by torch parameter name, in torch's layout."""
    return {name: numpy(parameter.grad) for name, parameter in model.named_parameters()}


def parameter_values(model):
    return {name: numpy(parameter) for name, parameter in model.named_parameters()}


def buffer_values(model):
    """Floating-point buffers (BatchNorm's running statistics) by torch name; integer counters are not
    state a port must hold (BatchNorm's num_batches_tracked: alignment.pairs.resnet18)."""
    return {name: numpy(buffer) for name, buffer in model.named_buffers() if buffer.is_floating_point()}


def momentum_buffers(model, optimizer):
    """SGD's momentum buffer of every parameter, by torch name."""
    return {name: numpy(optimizer.state[parameter]["momentum_buffer"]) for name, parameter in model.named_parameters()
            if "momentum_buffer" in optimizer.state.get(parameter, {})}
