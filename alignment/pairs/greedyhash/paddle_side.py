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
# By torch name, in torch's layout, as torch_side reads its model (alignment.sides.paddle_tensors)
_BY_TORCH_NAME = paddle_tensors.by_torch_name(GREEDYHASH_KEY_MAP, TRANSPOSED_LINEAR_WEIGHTS)
named_parameters = _BY_TORCH_NAME["named_parameters"]
torch_layout = _BY_TORCH_NAME["torch_layout"]
parameter_gradients = _BY_TORCH_NAME["parameter_gradients"]
parameter_values = _BY_TORCH_NAME["parameter_values"]
buffer_values = _BY_TORCH_NAME["buffer_values"]
momentum_buffers = _BY_TORCH_NAME["momentum_buffers"]


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
