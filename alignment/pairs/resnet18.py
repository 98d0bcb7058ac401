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
import sys

import numpy as np

from greedyhash_common.state_dicts.layout import Layout

from ..weight_sets import SEEDED, USER

NAME = "resnet18"
STEPS = ("forward", "loss", "backward", "optim", "train")
OUTPUTS = ("logits",)
NUM_CLASSES = 10
WEIGHT_SETS = (SEEDED,)
# 64: every stride-2 layer halves an even map; 61: odd maps, so the max-pool's and the strided
# convolutions' last windows are cut by the border, and layer4 ends in a 2x2 map the average pool reduces
DEFAULT_SIZES = (64, 61)
# From 33 px layer4's maps are 2x2: each BatchNorm there normalizes 16 values of the suite's batch of 4.
# Below, at 1x1, it normalizes 4, and the training-mode gradients' float64 rounding grows past the 1e-10
# limit for a port that computes the same function (docs/adding-a-model-pair.md, Choices).
SMALLEST_IMAGE_SIZE = 33
BACKWARD_MODES = ("eval", "train")  # train: BatchNorm normalizes with the batch's statistics
# A ReLU decision flipped by float32 rounding in one update is carried by the next ones far past
# rounding while float64 agrees (docs/adding-a-model-pair.md, Choices): only float64 separates a defect
# from rounding in training.
FLOAT64_ONLY_TRAIN_WEIGHT_SETS = (SEEDED,)
# torchvision's classification reference trains ResNet with SGD, momentum 0.9, coupled L2 1e-4, and the
# rate 0.1 divided by 10 every 30 of 90 epochs
OPTIMIZER = {"lr": 0.1, "decay_every": 30, "momentum": 0.9, "weight_decay": 1e-4}
EPOCHS = 90
# The train step's rate: at the recipe's 0.1, float64 rounding in layer4's BatchNorms (16 values a
# channel at 64 px) grows about tenfold an update, past the 1e-10 limit within 3 updates for a port that
# computes the same function (docs/adding-a-model-pair.md, Choices).
TRAIN_LEARNING_RATE = 1e-3
BLOCKS, WIDTHS = (2, 2, 2, 2), (64, 128, 256, 512)
BATCH_NORM_BUFFERS = {"running_mean": "_mean", "running_var": "_variance"}  # torch -> Paddle
COUNTER = "num_batches_tracked"  # torch's count of training batches; Paddle keeps none
# The seeded set's BatchNorm parameters and statistics, each drawn uniformly from (low, high); the running
# statistics differ from the batch's, so eval mode and training mode normalize differently. Scales beyond
# 2 grow the eval-mode logits past Paddle's cross-entropy cap (docs/adding-a-model-pair.md).
BATCH_NORM_DRAWS = {"weight": (0.5, 2.0), "bias": (-0.5, 0.5), "running_mean": (-0.5, 0.5), "running_var": (0.5, 2.0)}


def train_learning_rate(weight_set):
    return TRAIN_LEARNING_RATE


def learning_rate_at(epoch):
    return OPTIMIZER["lr"] * 0.1 ** (epoch // OPTIMIZER["decay_every"])


def build(framework):
    if framework == "torch":
        import torchvision

        return torchvision.models.resnet18(num_classes=NUM_CLASSES)
    import paddle.vision

    return paddle.vision.models.resnet18(num_classes=NUM_CLASSES)


def loss(framework):
    if framework == "torch":
        import torch.nn.functional as functional
    else:
        import paddle.nn.functional as functional
    return functional.cross_entropy


def loss_terms(side, outputs, labels):
    return {"loss_total": side.loss(outputs["logits"], labels)}


def optimizer(framework):
    """(builder, current rate): SGD with momentum and coupled L2, the rate decayed by 10 per step of
    the schedule; the same optimizer as GreedyHash's product builds, with this pair's coefficients."""
    if framework == "torch":
        from torch_impl.optim import build_optimizer, current_lr
    else:
        from paddle_impl.optim import build_optimizer, current_lr
    return build_optimizer, current_lr


def side(framework):
    from ..sides.generic_side import make_side

    return make_side(sys.modules[__name__], framework)


def _batch_norm_shapes(prefix, width):
    return {**{f"{prefix}.{name}": (width,) for name in ("weight", "bias", *BATCH_NORM_BUFFERS)},
            f"{prefix}.{COUNTER}": ()}


def torch_shapes(blocks=BLOCKS, bottleneck=False):
    """Every key of torchvision's resnet (num_classes=10) state dict and its shape, written out by the
    architecture's rule: resnet18's basic blocks, or resnet50's bottlenecks (alignment.pairs.resnet50);
    tests/test_model_pairs.py checks it against both libraries' models."""
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


def layout(state=None, framework=None):
    return layout_of(NAME, torch_shapes())


def layout_of(name, shapes):
    """The converter's Layout: BatchNorm's running_mean / running_var are Paddle's _mean / _variance,
    num_batches_tracked has no Paddle counterpart (dropped; 0 when converting back: with a momentum
    set, torch never reads it), the Linear weight is stored transposed."""
    counters = tuple(key for key in shapes if key.endswith("." + COUNTER))
    return Layout(name, {key: paddle_key(key) for key in shapes if key not in counters}, ("fc.weight",), shapes,
                  dropped_torch_keys=counters, torch_defaults={key: np.array(0, dtype=np.int64) for key in counters})


def make_weight_set(bit, seed, workdir, weight_set, source=None):
    make_weight_set_of(sys.modules[__name__], bit, seed, workdir, weight_set, source)


def make_weight_set_of(pair, bit, seed, workdir, weight_set, source=None):
    """(torch process) One weight set of a ResNet pair in both layouts: the user's checkpoint (`source`,
    either framework's, converted strictly through the pair's layout), or the seeded set: torchvision's
    initialization from `seed`, and then BatchNorm's weights, biases and running statistics drawn from
    BATCH_NORM_DRAWS: at torchvision's 1, 0, 0, 1 a port that ignored BatchNorm's affine parameters or its
    running statistics in eval mode would agree."""
    import torch

    from greedyhash_common.state_dicts.paddle_files import write_paddle_state
    from torch_impl.torch_files import write_torch_state
    from weights_convert.checkpoints import both_layouts
    from weights_convert.convert import torch_to_paddle

    from ..paths import weights_path

    torch_file, paddle_file = (weights_path(workdir, bit, weight_set, suffix) for suffix in (".pth", ".pdparams"))
    if weight_set == USER:
        state, paddle_state, _ = both_layouts(source, pair.layout())
        write_torch_state(state, torch_file)
        write_paddle_state(paddle_state, paddle_file)
        return
    torch.manual_seed(seed)
    generator = np.random.default_rng(seed)
    state = {key: value.detach().numpy().copy() for key, value in pair.build("torch").state_dict().items()}
    for key, value in state.items():
        name = key.rpartition(".")[2]
        if name in pair.BATCH_NORM_DRAWS and value.ndim == 1 and key.split(".")[0] != "fc":  # BatchNorm's only
            low, high = pair.BATCH_NORM_DRAWS[name]
            state[key] = generator.uniform(low, high, value.shape).astype(value.dtype)
    write_torch_state(state, torch_file)
    write_paddle_state(torch_to_paddle(state, torch_file, pair.layout())[0], paddle_file)


def key_map():
    """{torch key: Paddle key} of every parameter and running statistic."""
    return layout().key_map
