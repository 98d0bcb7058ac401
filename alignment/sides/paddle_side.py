"""The Paddle side of the alignment steps."""
import numpy as np
import paddle

from paddle_impl import runtime
from paddle_impl.injected_dropout import inject_dropout_masks
from paddle_impl.loss import greedyhash_loss
from paddle_impl.model import GreedyHash
from paddle_impl.weights import load_weights
from weights_convert.key_map import GREEDYHASH_KEY_MAP, TRANSPOSED_LINEAR_WEIGHTS

NAME = "paddle"
WEIGHTS_SUFFIX = ".pdparams"
configure = runtime.configure
describe = runtime.describe
loss = greedyhash_loss
inject_masks = inject_dropout_masks
TORCH_NAME_OF = {paddle_key: torch_key for torch_key, paddle_key in GREEDYHASH_KEY_MAP.items()}


def build_model(bit, dtype, weights):
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


def parameter_gradients(model):
    """Gradients by torch parameter name, in torch's layout (Linear weights transposed back)."""
    by_torch_name = {}
    for name, parameter in model.named_parameters():
        torch_name = TORCH_NAME_OF[name]
        grad = numpy(parameter.grad)
        by_torch_name[torch_name] = grad.T if torch_name in TRANSPOSED_LINEAR_WEIGHTS else grad
    return by_torch_name
