"""ResNet-18 (10 classes): torchvision.models.resnet18 against paddle.vision.models.resnet18, both
libraries' own implementations, no model code of this project. The smallest complete adapter
(alignment.pairs lists what an adapter defines; docs/adding-a-model-pair.md walks through one).

What differs between the two libraries, as the suite measures it (docs/adding-a-model-pair.md,
ResNet-18): BatchNorm's running statistics after a training-mode pass. torch adds momentum times the
batch's unbiased variance (n / (n - 1) times the one it normalizes with) to (1 - momentum) times the old
value; Paddle adds the biased one, and keeps its momentum (0.9, the share of the old value) in float32,
so the running mean moves too, by less than float32's rounding. `resnet18-torch-bn`
(alignment/pairs/resnet18_torch_bn.py) is this pair with a Paddle BatchNorm that updates as torch does.
"""
from models import resnet

from ..weight_sets import SEEDED
from .base import ModelPair


class ResNet18(ModelPair):
    NAME = "resnet18"
    ARCHITECTURE = "resnet18"  # models.resnet.ARCHITECTURES
    # 64: every stride-2 layer halves an even map; 61: odd maps, so the max-pool's and the strided
    # convolutions' last windows are cut by the border, and layer4 ends in a 2x2 map the average pool reduces
    DEFAULT_SIZES = (64, 61)
    # From 33 px layer4's maps are 2x2: each BatchNorm there normalizes 16 values of the suite's batch of 4.
    # Below, at 1x1, it normalizes 4, and the training-mode gradients' float64 rounding grows past the 1e-10
    # limit for a port that computes the same function (docs/adding-a-model-pair.md, Choices).
    SMALLEST_IMAGE_SIZE = 33
    # A ReLU decision flipped by float32 rounding in one update is carried by the next ones far past
    # rounding while float64 agrees (docs/adding-a-model-pair.md, Choices): only float64 separates a defect
    # from rounding in training.
    FLOAT64_ONLY_TRAIN_WEIGHT_SETS = (SEEDED,)
    # Scales beyond 2 grow the eval-mode logits past Paddle's cross-entropy cap (docs/adding-a-model-pair.md)
    BATCH_NORM_DRAWS = {"weight": (0.5, 2.0), "bias": (-0.5, 0.5), "running_mean": (-0.5, 0.5),
                        "running_var": (0.5, 2.0)}

    def build(self, framework):
        return resnet.build(framework, self.ARCHITECTURE)

    def layout(self, state=None, framework=None):
        """The architecture's key layout (models.resnet)."""
        return resnet.layout(self.ARCHITECTURE)
