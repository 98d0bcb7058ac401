"""torchvision's and paddle.vision's ResNets (10 classes): how each is built, and the key layout of its
checkpoints, written out by the architecture's rule (tests/test_model_pairs.py checks it against both
libraries' models and the inferred key map).

BatchNorm's running_mean / running_var are Paddle's _mean / _variance; num_batches_tracked has no Paddle
counterpart (dropped; 0 when converting back: with a momentum set, torch never reads it); the Linear weight
is stored transposed.
"""
import numpy as np

from greedyhash_common.state_dicts.layout import Layout

NUM_CLASSES = 10
WIDTHS = (64, 128, 256, 512)
# the constructor's name in torchvision.models and paddle.vision.models: (blocks per stage, bottleneck)
ARCHITECTURES = {"resnet18": ((2, 2, 2, 2), False), "resnet50": ((3, 4, 6, 3), True)}
BATCH_NORM_BUFFERS = {"running_mean": "_mean", "running_var": "_variance"}  # torch -> Paddle
COUNTER = "num_batches_tracked"  # torch's count of training batches; Paddle keeps none
TRANSPOSED = ("fc.weight",)


def build(framework, architecture):
    """The untrained `architecture` of "torch" or "paddle"; the framework is imported here, not at module level."""
    if framework == "torch":
        import torchvision.models as library
    else:
        import paddle.vision.models as library
    return getattr(library, architecture)(num_classes=NUM_CLASSES)


def layout(architecture):
    shapes = torch_shapes(*ARCHITECTURES[architecture])
    counters = tuple(key for key in shapes if key.endswith("." + COUNTER))
    return Layout(architecture, {key: paddle_key(key) for key in shapes if key not in counters}, TRANSPOSED,
                  shapes, dropped_torch_keys=counters,
                  torch_defaults={key: np.array(0, dtype=np.int64) for key in counters})


def _batch_norm_shapes(prefix, width):
    return {**{f"{prefix}.{name}": (width,) for name in ("weight", "bias", *BATCH_NORM_BUFFERS)},
            f"{prefix}.{COUNTER}": ()}


def torch_shapes(blocks, bottleneck):
    """Every key of torchvision's resnet (num_classes=10) state dict and its shape: basic blocks (resnet18) or
    bottlenecks (resnet50)."""
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
