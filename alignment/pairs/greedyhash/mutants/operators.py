"""The mutation operators of catalog.py, implemented on the Paddle side at run time (no source edits): for
each, where it applies and how it mutates there; one mutant per place.
"""
import dataclasses

import numpy as np
from paddle import nn

from greedyhash_common.hyperparameters import MOMENTUM, QUANTIZATION_WEIGHT

from .catalog import CATALOG, MODEL, OperatorSpec

NORMS = (nn.BatchNorm1D, nn.BatchNorm2D, nn.BatchNorm3D, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1D,
         nn.InstanceNorm2D, nn.InstanceNorm3D)
BATCH_NORMS = (nn.BatchNorm1D, nn.BatchNorm2D, nn.BatchNorm3D)


@dataclasses.dataclass(frozen=True)
class Operator:
    spec: OperatorSpec
    applies: object  # (model seam) layer -> bool; (loss, optimizer seams) the places, a tuple of names
    # model seam: layer -> a replacement layer, or None after changing the layer in place;
    # loss seam: (loss, term) -> mutated loss; optimizer seam: (builder, place) -> mutated builder
    mutate: object

    name = property(lambda self: self.spec.name)
    seam = property(lambda self: self.spec.seam)
    description = property(lambda self: self.spec.description)
    needs = property(lambda self: self.spec.needs)

    def places(self, model):
        if self.seam != MODEL:
            return list(self.applies)
        return [name for name, layer in model.named_sublayers() if self.applies(layer)]


def _exactly(layer_type):
    return lambda layer: type(layer) is layer_type


def _is(layer_type):
    """Also the port's own subclasses (paddle_impl.model.Conv2D)."""
    return lambda layer: isinstance(layer, layer_type)


def _pool_settings(pool):
    return {"kernel_size": pool.ksize, "stride": pool.stride, "padding": pool.padding, "ceil_mode": pool.ceil_mode}


def _other_dropout_mode(dropout):
    other = "downscale_in_infer" if dropout.mode == "upscale_in_train" else "upscale_in_train"
    return nn.Dropout(dropout.p, axis=dropout.axis, mode=other)


def _zero_bias(layer):
    layer.bias.set_value(np.zeros(layer.bias.shape, dtype=layer.bias.numpy().dtype))


def _transpose_weight(linear):
    """The port loaded torch's [out, in] weight as Paddle's [in, out] without transposing: only a square
    weight loads at all."""
    linear.weight.set_value(np.ascontiguousarray(linear.weight.numpy().T))


def _has_square_weight(layer):
    return isinstance(layer, nn.Linear) and layer.weight.shape[0] == layer.weight.shape[1]


def _has_bias(layer):
    return isinstance(layer, (nn.Conv2D, nn.Linear)) and layer.bias is not None


def _conv_with(conv, **changes):
    """A Conv2D like `conv` with its stride or padding changed, holding `conv`'s parameters under the same
    names (a wrapper layer would rename them)."""
    weight = conv.weight.numpy()
    settings = {"stride": conv._stride, "padding": conv._padding, "dilation": conv._dilation,
                "groups": conv._groups, **changes}
    replacement = type(conv)(conv._in_channels, conv._out_channels, weight.shape[2:], **settings,
                                bias_attr=None if conv.bias is not None else False)
    replacement.to(dtype=conv.weight.dtype)
    replacement.weight.set_value(weight)
    if conv.bias is not None:
        replacement.bias.set_value(conv.bias.numpy())
    return replacement


def _shifted(values, shift):
    return [value + shift for value in values] if isinstance(values, (list, tuple)) else values + shift


def _has_padding(layer):
    return isinstance(layer, nn.Conv2D) and np.all(np.asarray(layer._padding) > 0)


def _scale_epsilon(norm):
    norm._epsilon = norm._epsilon * 100


def _flip_momentum_convention(norm):
    """torch's momentum weighs the new statistic, Paddle's the old one: a port that copies 0.1 gets 0.9."""
    norm._momentum = 1.0 - norm._momentum


MODEL_MUTATIONS = {
    "relu->leaky_relu": (_exactly(nn.ReLU), lambda layer: nn.LeakyReLU(0.01)),
    "relu->relu6": (_exactly(nn.ReLU), lambda layer: nn.ReLU6()),
    "relu->gelu": (_exactly(nn.ReLU), lambda layer: nn.GELU()),
    "max_pool->avg_pool": (_exactly(nn.MaxPool2D), lambda layer: nn.AvgPool2D(**_pool_settings(layer))),
    "avg_pool->max_pool": (_exactly(nn.AvgPool2D), lambda layer: nn.MaxPool2D(**_pool_settings(layer))),
    "max_pool.ceil_mode": (_exactly(nn.MaxPool2D),
                           lambda layer: nn.MaxPool2D(**{**_pool_settings(layer), "ceil_mode": not layer.ceil_mode})),
    "adaptive_avg->adaptive_max": (_exactly(nn.AdaptiveAvgPool2D),
                                   lambda layer: nn.AdaptiveMaxPool2D(layer._output_size)),
    "adaptive_max->adaptive_avg": (_exactly(nn.AdaptiveMaxPool2D),
                                   lambda layer: nn.AdaptiveAvgPool2D(layer._output_size)),
    "dropout.mode": (_exactly(nn.Dropout), _other_dropout_mode),
    "dropout.p=1-p": (_exactly(nn.Dropout), lambda layer: nn.Dropout(1.0 - layer.p, axis=layer.axis, mode=layer.mode)),
    "dropout.removed": (_exactly(nn.Dropout), lambda layer: nn.Identity()),
    "bias.zeroed": (_has_bias, _zero_bias),
    "linear.untransposed": (_has_square_weight, _transpose_weight),
    "conv.padding+1": (_is(nn.Conv2D), lambda conv: _conv_with(conv, padding=_shifted(conv._padding, 1))),
    "conv.padding-1": (_has_padding, lambda conv: _conv_with(conv, padding=_shifted(conv._padding, -1))),
    "conv.stride+1": (_is(nn.Conv2D), lambda conv: _conv_with(conv, stride=_shifted(conv._stride, 1))),
    "norm.epsilon*100": (lambda layer: isinstance(layer, NORMS), _scale_epsilon),
    "batch_norm.momentum=1-m": (lambda layer: isinstance(layer, BATCH_NORMS), _flip_momentum_convention),
}


# GreedyHash's loss, the only one the suite knows: total = 1 * cross_entropy + alpha * quantization,
# returned as (total, cross_entropy, quantization).
LOSS_TERMS = ("cross_entropy", "quantization")


def _term_weights(alpha):
    return {"cross_entropy": 1.0, "quantization": alpha}


def reweighted_loss(loss, term, factor):
    """`loss` with `term`'s weight multiplied by `factor` in the total (the terms themselves unchanged)."""
    def mutated(logits, h, labels, alpha=QUANTIZATION_WEIGHT):
        total, *terms = loss(logits, h, labels, alpha)
        changed = terms[LOSS_TERMS.index(term)]
        return (total + (factor - 1.0) * _term_weights(alpha)[term] * changed, *terms)
    return mutated


def _rebuilt(build, change):
    """An optimizer builder that calls `build` with `change(kwargs)`."""
    return lambda model, **kwargs: build(model, **change(kwargs))


def _after_build(build, adjust):
    """An optimizer builder whose (optimizer, scheduler) pass through `adjust` before they are handed out."""
    def builder(model, **kwargs):
        optimizer, scheduler = build(model, **kwargs)
        adjust(optimizer, scheduler)
        return optimizer, scheduler
    return builder


def _with_nesterov(optimizer, _):
    optimizer._use_nesterov = True


def _one_epoch_early(_, scheduler):
    scheduler.step()


def _one_epoch_late(_, scheduler):
    """The first scheduler.step() is lost: every later epoch sees the previous epoch's rate."""
    step, skipped = scheduler.step, []

    def late_step(*args, **kwargs):
        if not skipped:
            skipped.append(True)
            return None
        return step(*args, **kwargs)
    scheduler.step = late_step


OPTIMIZER_MUTATIONS = {
    "optimizer.momentum": (("optimizer",), lambda build, _: _rebuilt(build, lambda kwargs: {
        **kwargs, "momentum": (1.0 + kwargs.get("momentum", MOMENTUM)) / 2})),
    "optimizer.nesterov": (("optimizer",), lambda build, _: _after_build(build, _with_nesterov)),
    "optimizer.weight_decay=0": (("optimizer",),
                                 lambda build, _: _rebuilt(build, lambda kwargs: {**kwargs, "weight_decay": 0.0})),
    "schedule.one_epoch_early": (("scheduler",), lambda build, _: _after_build(build, _one_epoch_early)),
    "schedule.one_epoch_late": (("scheduler",), lambda build, _: _after_build(build, _one_epoch_late)),
}

LOSS_MUTATIONS = {
    "loss.term_sign": (LOSS_TERMS, lambda loss, term: reweighted_loss(loss, term, -1.0)),
    "loss.term_weight*10": (LOSS_TERMS, lambda loss, term: reweighted_loss(loss, term, 10.0)),
}

MUTATIONS = {**MODEL_MUTATIONS, **LOSS_MUTATIONS, **OPTIMIZER_MUTATIONS}
OPERATORS = tuple(Operator(spec, *MUTATIONS[spec.name]) for spec in CATALOG)
MODEL_OPERATORS = tuple(operator for operator in OPERATORS if operator.seam == MODEL)
