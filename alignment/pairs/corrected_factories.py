"""Model factories of torchvision's and paddle.vision's models (10 classes) with the zoo's corrections of
their known library differences applied (alignment.zoo, docs/zoo.md), for runs that need a port that
passes: the mutation score (`make align-mutants TORCH=alignment.pairs.corrected_factories:torch_mobilenet_v2
PADDLE=alignment.pairs.corrected_factories:paddle_mobilenet_v2`) measures what the checks catch on a port that
aligns.

MobileNetV2: the Paddle BatchNorms update their running statistics as torch's do (the unbiased variance),
and torch's BatchNorm epsilon is the float32 value Paddle adds even in float64.
"""
from ..zoo import NUM_CLASSES, batch_norm_epsilon_in_float32, batch_norm_statistics_as_torch


def torch_mobilenet_v2():
    import torchvision.models

    model = torchvision.models.mobilenet_v2(num_classes=NUM_CLASSES)
    batch_norm_epsilon_in_float32(model, None)
    return model


def paddle_mobilenet_v2():
    import paddle.vision.models

    model = paddle.vision.models.mobilenet_v2(num_classes=NUM_CLASSES)
    batch_norm_statistics_as_torch(None, model)
    return model
