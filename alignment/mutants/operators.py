"""Mutation operators: the mistakes porters make, applied at run time to the Paddle side (no source edits).

Each operator says where it applies and makes one mutant per place. It works through one of three
seams of the Paddle side (alignment/sides/paddle_side.py):

- model: a layer of the built model is replaced, or its parameters changed, after the weights are
  loaded. The layers are found by their Paddle class, so these operators apply to any Paddle model.
- loss: the side's loss (and the training step's, paddle_impl/train_step.py) computes one term with
  its sign flipped or its weight changed.
- optimizer: the side's optimizer builder is called with another momentum or weight decay, makes a
  Nesterov optimizer, or hands out a schedule shifted by one epoch.

`needs` names the coverage criterion (alignment/coverage.py) without which the operator cannot differ
from the layer it replaces: a survivor of such an operator is explained by that coverage gap.
"""
import dataclasses

import numpy as np
from paddle import nn

from greedyhash_common.hyperparameters import MOMENTUM, QUANTIZATION_WEIGHT

MODEL, LOSS, OPTIMIZER = "model", "loss", "optimizer"
NORMS = (nn.BatchNorm1D, nn.BatchNorm2D, nn.BatchNorm3D, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1D,
         nn.InstanceNorm2D, nn.InstanceNorm3D)
BATCH_NORMS = (nn.BatchNorm1D, nn.BatchNorm2D, nn.BatchNorm3D)


@dataclasses.dataclass(frozen=True)
class Operator:
    name: str
    seam: str
    description: str
    applies: object  # (model seam) layer -> bool; (loss, optimizer seams) the places, a tuple of names
    # model seam: layer -> a replacement layer, or None after changing the layer in place;
    # loss seam: (loss, term) -> mutated loss; optimizer seam: (builder, place) -> mutated builder
    mutate: object
    needs: str = None

    def places(self, model):
        if self.seam != MODEL:
            return list(self.applies)
        return [name for name, layer in model.named_sublayers() if self.applies(layer)]


def _exactly(layer_type):
    return lambda layer: type(layer) is layer_type


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
    replacement = nn.Conv2D(conv._in_channels, conv._out_channels, weight.shape[2:], **settings,
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


MODEL_OPERATORS = (
    Operator("relu->leaky_relu", MODEL, "a ReLU replaced by LeakyReLU(0.01)", _exactly(nn.ReLU),
             lambda layer: nn.LeakyReLU(0.01), "inputs of both signs"),
    Operator("relu->relu6", MODEL, "a ReLU replaced by ReLU6", _exactly(nn.ReLU), lambda layer: nn.ReLU6(),
             "inputs beyond 6"),
    Operator("relu->gelu", MODEL, "a ReLU replaced by GELU", _exactly(nn.ReLU), lambda layer: nn.GELU()),
    Operator("max_pool->avg_pool", MODEL, "a max-pool replaced by an average pool of the same windows",
             _exactly(nn.MaxPool2D), lambda layer: nn.AvgPool2D(**_pool_settings(layer)),
             "windows with distinct values"),
    Operator("avg_pool->max_pool", MODEL, "an average pool replaced by a max-pool of the same windows",
             _exactly(nn.AvgPool2D), lambda layer: nn.MaxPool2D(**_pool_settings(layer))),
    Operator("max_pool.ceil_mode", MODEL, "a max-pool's ceil_mode flipped", _exactly(nn.MaxPool2D),
             lambda layer: nn.MaxPool2D(**{**_pool_settings(layer), "ceil_mode": not layer.ceil_mode}),
             "a window cut by the border"),
    Operator("adaptive_avg->adaptive_max", MODEL, "an adaptive average pool replaced by an adaptive max-pool",
             _exactly(nn.AdaptiveAvgPool2D), lambda layer: nn.AdaptiveMaxPool2D(layer._output_size),
             "windows of more than one element"),
    Operator("adaptive_max->adaptive_avg", MODEL, "an adaptive max-pool replaced by an adaptive average pool",
             _exactly(nn.AdaptiveMaxPool2D), lambda layer: nn.AdaptiveAvgPool2D(layer._output_size),
             "windows of more than one element"),
    Operator("dropout.mode", MODEL, "a dropout's scaling mode switched (upscale_in_train <-> downscale_in_infer)",
             _exactly(nn.Dropout), _other_dropout_mode, "units both kept and dropped"),
    Operator("dropout.p=1-p", MODEL, "a dropout given the keep probability as its rate (p -> 1 - p)",
             _exactly(nn.Dropout), lambda layer: nn.Dropout(1.0 - layer.p, axis=layer.axis, mode=layer.mode),
             "units both kept and dropped"),
    Operator("dropout.removed", MODEL, "a dropout left out", _exactly(nn.Dropout), lambda layer: nn.Identity(),
             "units both kept and dropped"),
    Operator("bias.zeroed", MODEL, "a Conv or Linear bias zeroed (not loaded)", _has_bias, _zero_bias),
    Operator("linear.untransposed", MODEL, "a square Linear weight loaded without transposing",
             _has_square_weight, _transpose_weight),
    Operator("conv.padding+1", MODEL, "a convolution's padding one larger", _exactly(nn.Conv2D),
             lambda conv: _conv_with(conv, padding=_shifted(conv._padding, 1))),
    Operator("conv.padding-1", MODEL, "a convolution's padding one smaller", _has_padding,
             lambda conv: _conv_with(conv, padding=_shifted(conv._padding, -1))),
    Operator("conv.stride+1", MODEL, "a convolution's stride one larger", _exactly(nn.Conv2D),
             lambda conv: _conv_with(conv, stride=_shifted(conv._stride, 1))),
    Operator("norm.epsilon*100", MODEL, "a normalization's epsilon 100 times larger",
             lambda layer: isinstance(layer, NORMS), _scale_epsilon),
    Operator("batch_norm.momentum=1-m", MODEL, "a BatchNorm momentum copied across conventions (m -> 1 - m)",
             lambda layer: isinstance(layer, BATCH_NORMS), _flip_momentum_convention),
)


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


def _loss_operator(name, factor, what):
    return Operator(f"loss.{name}", LOSS, what, LOSS_TERMS, lambda loss, term: reweighted_loss(loss, term, factor))


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


OPTIMIZER_OPERATORS = (
    Operator("optimizer.momentum", OPTIMIZER, "momentum halfway to 1 (0.9 -> 0.95)", ("optimizer",),
             lambda build, _: _rebuilt(build, lambda kwargs: {
                 **kwargs, "momentum": (1.0 + kwargs.get("momentum", MOMENTUM)) / 2}),),
    Operator("optimizer.nesterov", OPTIMIZER, "Nesterov momentum switched on", ("optimizer",),
             lambda build, _: _after_build(build, _with_nesterov)),
    Operator("optimizer.weight_decay=0", OPTIMIZER, "the L2 weight decay left out", ("optimizer",),
             lambda build, _: _rebuilt(build, lambda kwargs: {**kwargs, "weight_decay": 0.0})),
    Operator("schedule.one_epoch_early", OPTIMIZER, "the learning-rate schedule one epoch ahead",
             ("scheduler",), lambda build, _: _after_build(build, _one_epoch_early)),
    Operator("schedule.one_epoch_late", OPTIMIZER, "the learning-rate schedule one epoch behind",
             ("scheduler",), lambda build, _: _after_build(build, _one_epoch_late)),
)

LOSS_OPERATORS = (
    _loss_operator("term_sign", -1.0, "a loss term's sign flipped in the total"),
    _loss_operator("term_weight*10", 10.0, "a loss term's weight ten times larger in the total"),
)

OPERATORS = MODEL_OPERATORS + LOSS_OPERATORS + OPTIMIZER_OPERATORS
