"""What every pair's Paddle side does with tensors, parameters, buffers and optimizers, named by the
torch names of a pair's key map and in torch's layout (`torch_name_of`: {paddle key: torch key};
`transposed`: torch keys stored transposed in Paddle).

Mirrors torch_tensors.py.
"""
import numpy as np
import paddle


def seed_framework(seed):
    """Seed the framework's own generator (its dropout masks when none are injected)."""
    paddle.seed(seed)


def tensor(array, requires_grad=False):
    value = paddle.to_tensor(np.ascontiguousarray(array))
    value.stop_gradient = not requires_grad
    return value


def numpy(value):
    """The tensor's values, on the CPU sharing its memory as torch_tensors.numpy's do (through DLPack):
    Tensor.numpy copies, a second for a float64 AlexNet's largest weight and 0.9 GB held for the parameters
    and momentum the train and optim steps read. A step that changes a tensor after reading it copies first
    (alignment/steps/train.py). A copy where DLPack cannot serve: a GPU tensor, or Paddle 2.6 (the GPU environment's),
    whose tensors have no __dlpack__."""
    value = value.detach()
    if value.place.is_cpu_place() and hasattr(value, "__dlpack__"):
        return np.from_dlpack(value)
    return value.numpy()


def gradients(output, inputs):
    """d output / d input for each input, keeping the graph for a later backward."""
    return [numpy(grad) for grad in paddle.grad(output, inputs, retain_graph=True)]


def backward(total):
    total.backward()


def gradient_of(value):
    """The gradient a backward left in a tensor made with requires_grad: what training computes. (Paddle's
    paddle.grad returns a wrong input gradient through a LayerNorm whose weight is not all ones, in
    3.3.1 and 2.6.2 alike, where backward is right: docs/adding-a-model-pair.md. The suite takes input
    gradients from backward on both sides.)"""
    return numpy(value.grad)


def cast(value, dtype):
    return value.astype(dtype)


def optimizer_step(optimizer):
    optimizer.step()
    optimizer.clear_grad()


def named_parameters(model, torch_name_of):
    """(torch name, parameter) pairs of the trainable parameters: Paddle's BatchNorm keeps its running
    statistics as parameters that take no gradient (torch's buffers; buffer_values)."""
    return ((torch_name_of[name], parameter) for name, parameter in model.named_parameters()
            if not parameter.stop_gradient)


def torch_layout(name, array, transposed):
    """An array of parameter `name` in torch's layout: Linear weights transposed (and back again)."""
    return array.T if name in transposed else array


def parameter_gradients(model, torch_name_of, transposed):
    return {name: torch_layout(name, numpy(parameter.grad), transposed)
            for name, parameter in named_parameters(model, torch_name_of)}


def parameter_values(model, torch_name_of, transposed):
    return {name: torch_layout(name, numpy(parameter), transposed)
            for name, parameter in named_parameters(model, torch_name_of)}


def buffer_values(model, torch_name_of):
    """The state that is not a trainable parameter (BatchNorm's running statistics), by torch name."""
    trainable = {name for name, parameter in model.named_parameters() if not parameter.stop_gradient}
    return {torch_name_of[name]: numpy(value) for name, value in model.state_dict().items() if name not in trainable}


def momentum_buffers(model, optimizer, torch_name_of, transposed):
    """Momentum's velocity of every parameter, by torch name, in torch's layout."""
    state = optimizer.state_dict()
    return {name: torch_layout(name, numpy(state[f"{parameter.name}_velocity_0"]), transposed)
            for name, parameter in named_parameters(model, torch_name_of) if f"{parameter.name}_velocity_0" in state}


def by_torch_name(key_map, transposed):
    """The readers above bound to a pair's key map ({torch key: Paddle key}) and transposed weights:
    {name: function}, with the names and arguments of torch_tensors' own (whose names and layout are the
    reference, so they need no binding)."""
    torch_name_of = {paddle_key: torch_key for torch_key, paddle_key in key_map.items()}
    return {"named_parameters": lambda model: named_parameters(model, torch_name_of),
            "torch_layout": lambda name, array: torch_layout(name, array, transposed),
            "parameter_gradients": lambda model: parameter_gradients(model, torch_name_of, transposed),
            "parameter_values": lambda model: parameter_values(model, torch_name_of, transposed),
            "buffer_values": lambda model: buffer_values(model, torch_name_of),
            "momentum_buffers": lambda model, optimizer: momentum_buffers(model, optimizer, torch_name_of, transposed)}
