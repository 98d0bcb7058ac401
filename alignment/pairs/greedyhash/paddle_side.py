"""The GreedyHash pair's Paddle side of the alignment steps (alignment.pairs.greedyhash)."""
from greedyhash_common.state_dicts.key_map import GREEDYHASH_KEY_MAP, TRANSPOSED_LINEAR_WEIGHTS
from paddle_impl import data, fast_data, runtime  # noqa: F401 (the steps use side.data, side.fast_data)
from paddle_impl import eval as evaluation  # noqa: F401 (the steps use side.evaluation)
from paddle_impl.injected_dropout import inject_dropout_masks
from paddle_impl.loss import greedyhash_loss
from paddle_impl.model import GreedyHash
from paddle_impl.optim import build_optimizer, current_lr
from paddle_impl.static_model import InferenceEncoder
from paddle_impl.train import train_one_epoch  # noqa: F401 (the train step drives it)
from paddle_impl.weights import load_weights

from ...sides import paddle_tensors
from ...sides.paddle_tensors import (backward, cast, gradient_of, gradients, numpy,  # noqa: F401
                                     optimizer_step, seed_framework, tensor)

NAME = "paddle"
WEIGHTS_SUFFIX = ".pdparams"
configure = runtime.configure
describe = runtime.describe
loss = greedyhash_loss
inject_masks = inject_dropout_masks
optimizer_builder = build_optimizer
learning_rate = current_lr
TORCH_NAME_OF = {paddle_key: torch_key for torch_key, paddle_key in GREEDYHASH_KEY_MAP.items()}


def deployed_encoder(model, image_size, threads):
    """What paddle_impl.eval (by default), predict and infer encode with: the Paddle Inference predictor."""
    return InferenceEncoder(model, image_size, threads).encode


def build_model(bit, dtype, weights):
    # initialized, unlike torch's meta-device build: parameters made under paddle.LazyGuard cannot be cast
    # (`to(dtype)`) before they are loaded (Paddle 3.3.1 and 2.6.2 alike)
    model = GreedyHash(bit)
    model.to(dtype=dtype)
    load_weights(model, weights)
    model.eval()
    return model


def named_parameters(model):
    """(torch name, parameter) pairs."""
    return paddle_tensors.named_parameters(model, TORCH_NAME_OF)


def torch_layout(name, array):
    """An array of parameter `name` in torch's layout: Linear weights transposed (and back again)."""
    return paddle_tensors.torch_layout(name, array, TRANSPOSED_LINEAR_WEIGHTS)


def parameter_gradients(model):
    """Gradients by torch parameter name, in torch's layout."""
    return paddle_tensors.parameter_gradients(model, TORCH_NAME_OF, TRANSPOSED_LINEAR_WEIGHTS)


def parameter_values(model):
    return paddle_tensors.parameter_values(model, TORCH_NAME_OF, TRANSPOSED_LINEAR_WEIGHTS)


def buffer_values(model):
    return paddle_tensors.buffer_values(model, TORCH_NAME_OF)


def momentum_buffers(model, optimizer):
    """Momentum's velocity of every parameter, by torch name, in torch's layout."""
    return paddle_tensors.momentum_buffers(model, optimizer, TORCH_NAME_OF, TRANSPOSED_LINEAR_WEIGHTS)
