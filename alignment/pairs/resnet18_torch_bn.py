"""ResNet-18 with the adapter's documented correction: the Paddle model's BatchNorm layers update their
running statistics as torch's do (torch's momentum 0.1 exactly, the batch's unbiased variance). The
model, its weights, key map and every other definition are resnet18's (alignment/pairs/resnet18.py);
the suite shows this pair aligned where resnet18 is not (docs/adding-a-model-pair.md, ResNet-18).

Only the running statistics change: what a training-mode pass computes (normalized with the batch's
own, biased, variance) is the same in both libraries already.
"""
import sys

from . import resnet18
from .resnet18 import (BACKWARD_MODES, BATCH_NORM_DRAWS, DEFAULT_SIZES, EPOCHS,  # noqa: F401 (the pair's definitions)
                       FLOAT64_ONLY_TRAIN_WEIGHT_SETS, OPTIMIZER, OUTPUTS, SMALLEST_IMAGE_SIZE, STEPS, WEIGHT_SETS,
                       key_map, layout, learning_rate_at, loss, loss_terms, make_weight_set, optimizer,
                       train_learning_rate)

NAME = "resnet18-torch-bn"
TORCH_MOMENTUM = 0.1  # torch's: the share of the batch's statistic; Paddle's 0.9 is the old value's, in float32


def build(framework):
    model = resnet18.build(framework)
    if framework == "paddle":
        update_batch_norm_as_torch(model)
    return model


def side(framework):
    from ..sides.generic_side import make_side

    return make_side(sys.modules[__name__], framework)


def _keep_running_statistics(layer, inputs):
    if layer.training:
        layer.statistics_before_pass = (layer._mean.clone(), layer._variance.clone())


def _update_running_statistics(layer, inputs, output):
    """Set the running statistics from those before the pass, as torch does: (1 - m) * old + m * batch,
    with the batch's unbiased variance."""
    if not layer.training:
        return
    import paddle

    mean, variance = layer.statistics_before_pass
    with paddle.no_grad():
        axes = [0, 2, 3]
        layer._mean.set_value((1 - TORCH_MOMENTUM) * mean + TORCH_MOMENTUM * inputs[0].mean(axis=axes))
        layer._variance.set_value((1 - TORCH_MOMENTUM) * variance
                                  + TORCH_MOMENTUM * inputs[0].var(axis=axes, unbiased=True))


def update_batch_norm_as_torch(model):
    """Hook every BatchNorm2D of a Paddle model so that a training-mode pass leaves torch's running
    statistics."""
    import paddle

    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            layer.register_forward_pre_hook(_keep_running_statistics)
            layer.register_forward_post_hook(_update_running_statistics)
