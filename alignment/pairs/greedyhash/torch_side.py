"""The GreedyHash pair's torch side of the alignment steps (alignment.pairs.greedyhash)."""
import torch

from torch_impl import data, fast_data, runtime  # noqa: F401 (the steps use side.data, side.fast_data)
from torch_impl import eval as evaluation  # noqa: F401 (the steps use side.evaluation)
from torch_impl.injected_dropout import inject_dropout_masks
from torch_impl.loss import greedyhash_loss
from torch_impl.model import GreedyHash
from torch_impl.optim import build_optimizer, current_lr
from torch_impl.train import train_one_epoch  # noqa: F401 (the train step drives it)
from torch_impl.weights import load_weights

from ...sides.torch_tensors import (backward, buffer_values, cast, gradient_of, gradients,  # noqa: F401
                                    momentum_buffers, named_parameters, numpy, optimizer_step, parameter_gradients,
                                    parameter_values, seed_framework, tensor, torch_layout)

NAME = "torch"
WEIGHTS_SUFFIX = ".pth"
configure = runtime.configure
describe = runtime.describe
loss = greedyhash_loss
inject_masks = inject_dropout_masks
optimizer_builder = build_optimizer
learning_rate = current_lr


def deployed_encoder(model, image_size, threads):
    """What torch_impl.eval and predict encode with: the model itself."""
    return lambda loader: evaluation.encode(model, loader)


def build_model(bit, dtype, weights):
    with torch.device("meta"):  # load_weights sets every parameter (strictly): no initialization to compute
        model = GreedyHash(bit).to(getattr(torch, dtype))
    model.to_empty(device="cpu")
    load_weights(model, weights)  # in the run's precision: float64 weights keep the bits no float32 holds
    return model.eval()
