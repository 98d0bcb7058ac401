"""ResNet-50 (10 classes): torchvision.models.resnet50 against paddle.vision.models.resnet50. Every
definition but the architecture is resnet18's (alignment/pairs/resnet18.py), the libraries' BatchNorm
difference included; the pair measures how the suite's cost grows with the model
(docs/adding-a-model-pair.md, Cost)."""
import sys

from . import resnet18
from .resnet18 import (BACKWARD_MODES, DEFAULT_SIZES, EPOCHS, FLOAT64_ONLY_TRAIN_WEIGHT_SETS,  # noqa: F401
                       NUM_CLASSES, OPTIMIZER, OUTPUTS, SMALLEST_IMAGE_SIZE, STEPS, WEIGHT_SETS, learning_rate_at, loss,
                       loss_terms, optimizer, train_learning_rate)

NAME = "resnet50"
BLOCKS = (3, 4, 6, 3)
# Narrower than resnet18's: over 16 blocks, scales up to 2 grow the eval-mode logits past Paddle's
# cross-entropy cap (docs/adding-a-model-pair.md)
BATCH_NORM_DRAWS = {"weight": (0.5, 1.5), "bias": (-0.2, 0.2), "running_mean": (-0.2, 0.2), "running_var": (0.5, 2.0)}


def build(framework):
    if framework == "torch":
        import torchvision

        return torchvision.models.resnet50(num_classes=NUM_CLASSES)
    import paddle.vision

    return paddle.vision.models.resnet50(num_classes=NUM_CLASSES)


def side(framework):
    from ..sides.generic_side import make_side

    return make_side(sys.modules[__name__], framework)


def layout(state=None, framework=None):
    return resnet18.layout_of(NAME, resnet18.torch_shapes(BLOCKS, bottleneck=True))


def key_map():
    return layout().key_map


def make_weight_set(bit, seed, workdir, weight_set, source=None):
    resnet18.make_weight_set_of(sys.modules[__name__], bit, seed, workdir, weight_set)
