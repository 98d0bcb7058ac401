"""The Paddle side of the alignment steps."""
import numpy as np
import paddle

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

NAME = "paddle"
WEIGHTS_SUFFIX = ".pdparams"
configure = runtime.configure
describe = runtime.describe
loss = greedyhash_loss
inject_masks = inject_dropout_masks
optimizer_builder = build_optimizer
learning_rate = current_lr
TORCH_NAME_OF = {paddle_key: torch_key for torch_key, paddle_key in GREEDYHASH_KEY_MAP.items()}


def seed_framework(seed):
    """Seed the framework's own generator (its dropout masks when none are injected)."""
    paddle.seed(seed)


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


def tensor(array, requires_grad=False):
    value = paddle.to_tensor(np.ascontiguousarray(array))
    value.stop_gradient = not requires_grad
    return value


def numpy(value):
    return value.detach().numpy()


def gradients(output, inputs):
    """d output / d input for each input, keeping the graph for a later backward."""
    return [numpy(grad) for grad in paddle.grad(output, inputs, retain_graph=True)]


def backward(total):
    total.backward()


def cast(value, dtype):
    return value.astype(dtype)


def named_parameters(model):
    """(torch name, parameter) pairs."""
    return ((TORCH_NAME_OF[name], parameter) for name, parameter in model.named_parameters())


def torch_layout(name, array):
    """An array of parameter `name` in torch's layout: Linear weights transposed (and back again)."""
    return array.T if name in TRANSPOSED_LINEAR_WEIGHTS else array


def parameter_gradients(model):
    """Gradients by torch parameter name, in torch's layout."""
    return {name: torch_layout(name, numpy(parameter.grad)) for name, parameter in named_parameters(model)}


def parameter_values(model):
    return {name: torch_layout(name, numpy(parameter)) for name, parameter in named_parameters(model)}


def momentum_buffers(model, optimizer):
    """Momentum's velocity of every parameter, by torch name, in torch's layout."""
    state = optimizer.state_dict()
    return {name: torch_layout(name, numpy(state[f"{parameter.name}_velocity_0"]))
            for name, parameter in named_parameters(model) if f"{parameter.name}_velocity_0" in state}


def optimizer_step(optimizer):
    optimizer.step()
    optimizer.clear_grad()
