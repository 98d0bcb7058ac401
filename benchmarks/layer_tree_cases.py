"""torchvision's and paddle.vision's MobileNetV2 and SqueezeNet 1.1 as model pairs whose module trees differ,
both sides built in this process, and the defects planted in their Paddle side: what the layer localization's
tests (tests/test_alignment_layer_trees.py) and the PaDiff comparison (benchmarks/padiff_comparison.py) run.

A small adapter of its own (the suite's one-call API needs none): weights drawn once on the torch side
(BatchNorm's statistics drawn too, so eval mode is not an identity there) and copied to the Paddle
model in state-dict order, Linear weights transposed. Dropout is set to p = 0 in training mode on both
sides (no masks to inject): the defects these tests plant are elsewhere.
"""
import functools
import types

import numpy as np

from alignment.pairs.base import ModelPair
from alignment.sides import paddle_tensors, torch_tensors

NUM_CLASSES = 10
SIZE = 64
# BatchNorm's scales drawn this wide so that ReLU6's clamp is reached in eval mode too, as with trained
# weights (at torchvision's 1 no input of a ReLU6 passes 6 at this size)
BATCH_NORM_SCALES = (1.0, 4.0)
TENSOR_FUNCTIONS = ("tensor", "numpy", "backward", "gradient_of")


def batch(size=SIZE):
    generator = np.random.default_rng(0)
    return generator.standard_normal((4, 3, size, size)), np.array([0, 1, 2, 3], dtype=np.int64)


class TreePair(ModelPair):
    """A pair whose models come from torchvision.models.<arch> and paddle.vision.models.<arch>."""
    STEPS = ("forward",)
    OUTPUTS = ("logits",)

    def __init__(self, arch):
        self.NAME = arch
        self.arch = arch

    def torch_model(self):
        import torch
        import torchvision

        torch.manual_seed(0)
        model = getattr(torchvision.models, self.arch)(num_classes=NUM_CLASSES)
        generator = np.random.default_rng(0)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                for tensor, (low, high) in ((module.running_mean, (-0.5, 0.5)), (module.running_var, (0.5, 2.0)),
                                            (module.weight.data, BATCH_NORM_SCALES)):
                    tensor.copy_(torch.from_numpy(generator.uniform(low, high, module.num_features)))
        return model

    @functools.lru_cache(maxsize=None)
    def torch_state(self):
        return {key: value.detach().numpy().copy() for key, value in self.torch_model().state_dict().items()
                if not key.endswith("num_batches_tracked")}

    def paddle_model(self):
        import paddle.vision

        return getattr(paddle.vision.models, self.arch)(num_classes=NUM_CLASSES)

    @functools.lru_cache(maxsize=None)
    def key_map(self):
        return dict(zip(self.torch_state(), self.paddle_model().state_dict()))

    def build(self, framework):
        return self.torch_model() if framework == "torch" else self.paddle_model()

    def side(self, framework):
        return self.torch_side() if framework == "torch" else self.paddle_side()

    def torch_side(self, plant=None):
        import torch
        import torch.nn.functional as functional

        def build_model(bit, dtype, weights):
            model = self.torch_model().to(getattr(torch, dtype)).eval()
            return plant(model) if plant else model

        return types.SimpleNamespace(NAME="torch", build_model=build_model, loss=functional.cross_entropy,
                                     **{name: getattr(torch_tensors, name) for name in TENSOR_FUNCTIONS})

    def paddle_side(self, plant=None):
        """The Paddle side; `plant(model)` changes the built model (a planted defect)."""
        import paddle.nn.functional as functional

        def build_model(bit, dtype, weights):
            model = self.paddle_model()
            model.to(dtype=dtype)
            own, state = model.state_dict(), self.torch_state()
            for torch_key, paddle_key in self.key_map().items():
                value = state[torch_key]
                own[paddle_key].set_value((value.T if value.ndim == 2 else value).astype(dtype))
            model.eval()
            return plant(model) if plant else model

        return types.SimpleNamespace(NAME="paddle", build_model=build_model, loss=functional.cross_entropy,
                                     **{name: getattr(paddle_tensors, name) for name in TENSOR_FUNCTIONS})

    @staticmethod
    def loss_terms(side, outputs, labels):
        return {"loss_total": side.loss(outputs["logits"], labels)}

    @staticmethod
    def inject_randomness(side, model, seed):
        for _, layer in (model.named_modules() if side.NAME == "torch" else model.named_sublayers()):
            if type(layer).__name__ == "Dropout":
                layer.p = 0.0


def squeezenet_as_torchvision(model):
    """paddle.vision's SqueezeNet 1.1 with torchvision's choices where the two libraries differ: the stem
    convolution unpadded, the max-pools' ceil_mode on, dropout scaled in training (not halved in eval)."""
    model._conv._padding, model._conv._updated_padding = 0, [0, 0]
    model._pool.ceil_mode = True
    model._drop.mode = "upscale_in_train"
    return model


MOBILENET_V2 = TreePair("mobilenet_v2")
SQUEEZENET = TreePair("squeezenet1_1")


def relu_for_relu6(model):
    import paddle

    model.features[3].conv[1][2] = paddle.nn.ReLU()  # the planted line: the source named
    return model


def padded_pointwise_convolution(model):
    import paddle

    right = model.features[1].conv[1]
    wrong = paddle.nn.Conv2D(32, 16, 1, padding=1, bias_attr=False)  # the planted line: the source named
    wrong.to(dtype=right.weight.dtype)
    wrong.weight.set_value(right.weight)
    model.features[1].conv[1] = wrong
    return model


def batch_norm_momentum(model):
    model.features[5].conv[1][1]._momentum = 0.5  # torchvision's 0.1 is Paddle's 0.9
    return model


def ceil_mode_off(model):
    squeezenet_as_torchvision(model)._pool.ceil_mode = False
    return model
