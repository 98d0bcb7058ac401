"""ResNet-18 with the adapter's documented correction: the Paddle model's BatchNorm layers update their
running statistics as torch's do (torch's momentum 0.1 exactly, the batch's unbiased variance). The
model, its weights, key map and every other definition are resnet18's (alignment/pairs/resnet18.py);
the suite shows this pair aligned where resnet18 is not (docs/adding-a-model-pair.md, ResNet-18).

Only the running statistics change: what a training-mode pass computes (normalized with the batch's
own, biased, variance) is the same in both libraries already.
"""
import functools

from .resnet18 import ResNet18

TORCH_MOMENTUM = 0.1  # torch's: the share of the batch's statistic; Paddle's 0.9 is the old value's, in float32


class ResNet18TorchBN(ResNet18):
    NAME = "resnet18-torch-bn"
    MOMENTUM = TORCH_MOMENTUM

    def build(self, framework):
        model = super().build(framework)
        if framework == "paddle":
            update_batch_norm_as_torch(model, self.MOMENTUM)
        return model


def _keep_running_statistics(layer, inputs):
    if layer.training:  # a dict: not read as one of the layer's settings (the localization's operator_attributes)
        layer.statistics_before_pass = {"mean": layer._mean.clone(), "variance": layer._variance.clone()}


def _update_running_statistics(layer, inputs, output, momentum):
    """Set the running statistics from those before the pass, as torch does: (1 - m) * old + m * batch,
    with the batch's unbiased variance."""
    if not layer.training:
        return
    import paddle

    mean, variance = layer.statistics_before_pass["mean"], layer.statistics_before_pass["variance"]
    momentum = 1 - layer._momentum if momentum is None else momentum  # Paddle's is the old value's share
    with paddle.no_grad():
        axes = [0, *range(2, inputs[0].ndim)]
        layer._mean.set_value((1 - momentum) * mean + momentum * inputs[0].mean(axis=axes))
        layer._variance.set_value((1 - momentum) * variance
                                  + momentum * inputs[0].var(axis=axes, unbiased=True))


def update_batch_norm_as_torch(model, momentum=TORCH_MOMENTUM):
    """Hook every BatchNorm of a Paddle model so that a training-mode pass leaves torch's running
    statistics; `momentum` None: the layer's own, in torch's convention."""
    import paddle

    for layer in model.sublayers():
        if isinstance(layer, (paddle.nn.layer.norm._BatchNormBase, paddle.nn.BatchNorm)):
            layer.register_forward_pre_hook(_keep_running_statistics)
            layer.register_forward_post_hook(functools.partial(_update_running_statistics, momentum=momentum))
