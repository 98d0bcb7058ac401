"""The torch side of the alignment steps."""
import numpy as np
import torch

from torch_impl import data, fast_data, runtime  # noqa: F401 (the steps use side.data, side.fast_data)
from torch_impl import eval as evaluation  # noqa: F401 (the steps use side.evaluation)
from torch_impl.injected_dropout import inject_dropout_masks
from torch_impl.loss import greedyhash_loss
from torch_impl.model import GreedyHash
from torch_impl.optim import build_optimizer, current_lr
from torch_impl.train import train_one_epoch  # noqa: F401 (the train step drives it)
from torch_impl.weights import load_weights

NAME = "torch"
WEIGHTS_SUFFIX = ".pth"
configure = runtime.configure
describe = runtime.describe
loss = greedyhash_loss
inject_masks = inject_dropout_masks
optimizer_builder = build_optimizer
learning_rate = current_lr


def seed_framework(seed):
    """Seed the framework's own generator (its dropout masks when none are injected)."""
    torch.manual_seed(seed)


def deployed_encoder(model, image_size, threads):
    """What torch_impl.eval and predict encode with: the model itself."""
    return lambda loader: evaluation.encode(model, loader)


def build_model(bit, dtype, weights):
    with torch.device("meta"):  # load_weights sets every parameter (strictly): no initialization to compute
        model = GreedyHash(bit)
    model.to_empty(device="cpu")
    load_weights(model, weights)
    return model.to(getattr(torch, dtype)).eval()


def tensor(array, requires_grad=False):
    return torch.from_numpy(np.ascontiguousarray(array)).requires_grad_(requires_grad)


def numpy(value):
    return value.detach().cpu().numpy()


def gradients(output, inputs):
    """d output / d input for each input, keeping the graph for a later backward."""
    return [numpy(grad) for grad in torch.autograd.grad(output, inputs, retain_graph=True)]


def backward(total):
    total.backward()


def cast(value, dtype):
    return value.to(getattr(torch, dtype))


def named_parameters(model):
    """(torch name, parameter) pairs."""
    return model.named_parameters()


def torch_layout(name, array):
    """An array of parameter `name` in torch's layout (already so on this side)."""
    return array


def parameter_gradients(model):
    """Gradients by torch parameter name, in torch's layout."""
    return {name: numpy(parameter.grad) for name, parameter in model.named_parameters()}


def parameter_values(model):
    return {name: numpy(parameter) for name, parameter in model.named_parameters()}


def momentum_buffers(model, optimizer):
    """SGD's momentum buffer of every parameter, by torch name."""
    return {name: numpy(optimizer.state[parameter]["momentum_buffer"]) for name, parameter in model.named_parameters()
            if "momentum_buffer" in optimizer.state.get(parameter, {})}


def optimizer_step(optimizer):
    optimizer.step()
    optimizer.zero_grad()
