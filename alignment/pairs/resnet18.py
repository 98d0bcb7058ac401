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
import numpy as np

from greedyhash_common.state_dicts.layout import Layout

from ..weight_sets import SEEDED
from .base import ModelPair

NUM_CLASSES = 10
WIDTHS = (64, 128, 256, 512)
BATCH_NORM_BUFFERS = {"running_mean": "_mean", "running_var": "_variance"}  # torch -> Paddle
COUNTER = "num_batches_tracked"  # torch's count of training batches; Paddle keeps none


class ResNet18(ModelPair):
    NAME = "resnet18"
    ARCHITECTURE = "resnet18"  # the constructor's name in torchvision.models and paddle.vision.models
    BLOCKS, BOTTLENECK = (2, 2, 2, 2), False
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
        if framework == "torch":
            import torchvision.models as models
        else:
            import paddle.vision.models as models
        return getattr(models, self.ARCHITECTURE)(num_classes=NUM_CLASSES)

    def layout(self, state=None, framework=None):
        """BatchNorm's running_mean / running_var are Paddle's _mean / _variance, num_batches_tracked has no
        Paddle counterpart (dropped; 0 when converting back: with a momentum set, torch never reads it), the
        Linear weight is stored transposed."""
        shapes = torch_shapes(self.BLOCKS, self.BOTTLENECK)
        counters = tuple(key for key in shapes if key.endswith("." + COUNTER))
        return Layout(self.NAME, {key: paddle_key(key) for key in shapes if key not in counters}, ("fc.weight",),
                      shapes, dropped_torch_keys=counters,
                      torch_defaults={key: np.array(0, dtype=np.int64) for key in counters})


def _batch_norm_shapes(prefix, width):
    return {**{f"{prefix}.{name}": (width,) for name in ("weight", "bias", *BATCH_NORM_BUFFERS)},
            f"{prefix}.{COUNTER}": ()}


def torch_shapes(blocks, bottleneck):
    """Every key of torchvision's resnet (num_classes=10) state dict and its shape, written out by the
    architecture's rule: resnet18's basic blocks, or resnet50's bottlenecks (alignment.pairs.resnet50);
    tests/test_model_pairs.py checks it against both libraries' models and the inferred key map."""
    shapes = {"conv1.weight": (64, 3, 7, 7), **_batch_norm_shapes("bn1", 64)}
    expansion = 4 if bottleneck else 1
    in_width = 64
    for stage, (count, width) in enumerate(zip(blocks, WIDTHS), start=1):
        for block in range(count):
            prefix = f"layer{stage}.{block}"
            convolutions = ([(width, in_width, 1, 1), (width, width, 3, 3), (width * expansion, width, 1, 1)]
                            if bottleneck else [(width, in_width, 3, 3), (width, width, 3, 3)])
            for number, shape in enumerate(convolutions, start=1):
                shapes[f"{prefix}.conv{number}.weight"] = shape
                shapes.update(_batch_norm_shapes(f"{prefix}.bn{number}", shape[0]))
            if block == 0 and in_width != width * expansion:
                shapes[f"{prefix}.downsample.0.weight"] = (width * expansion, in_width, 1, 1)
                shapes.update(_batch_norm_shapes(f"{prefix}.downsample.1", width * expansion))
            in_width = width * expansion
    shapes.update({"fc.weight": (NUM_CLASSES, in_width), "fc.bias": (NUM_CLASSES,)})
    return shapes


def paddle_key(torch_key):
    parent, _, name = torch_key.rpartition(".")
    return f"{parent}.{BATCH_NORM_BUFFERS.get(name, name)}"
