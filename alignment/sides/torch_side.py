"""The torch side of the alignment steps."""
import numpy as np
import torch

from torch_impl import runtime
from torch_impl.injected_dropout import inject_dropout_masks
from torch_impl.loss import greedyhash_loss
from torch_impl.model import GreedyHash
from torch_impl.weights import load_weights

NAME = "torch"
WEIGHTS_SUFFIX = ".pth"
configure = runtime.configure
describe = runtime.describe
loss = greedyhash_loss
inject_masks = inject_dropout_masks


def build_model(bit, dtype, weights):
    model = GreedyHash(bit)
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


def parameter_gradients(model):
    """Gradients by torch parameter name, in torch's layout."""
    return {name: numpy(parameter.grad) for name, parameter in model.named_parameters()}
