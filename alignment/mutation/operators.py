"""The mutation operators of catalog.py, implemented on the Paddle side at run time (no source edits): for
each, where it applies and how it mutates there; one mutant per place.
"""
import dataclasses

import numpy as np
import paddle
from paddle import nn

from greedyhash_common.hyperparameters import MOMENTUM

from ..sides import patched
from .catalog import CATALOG, MODEL, OperatorSpec

NORMS = (nn.BatchNorm1D, nn.BatchNorm2D, nn.BatchNorm3D, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1D,
         nn.InstanceNorm2D, nn.InstanceNorm3D)
BATCH_NORMS = (nn.BatchNorm1D, nn.BatchNorm2D, nn.BatchNorm3D)


@dataclasses.dataclass(frozen=True)
class Operator:
    spec: OperatorSpec
    applies: object  # (model seam) layer -> bool; (other seams) the pair's Seams -> the places, names
    # model seam: layer -> a replacement layer, or None after changing the layer in place; loss seam:
    # (seams, loss, term) -> mutated loss; optimizer seam: (builder, place) -> mutated builder; loop seam:
    # the loop function -> the mutated one
    mutate: object

    name = property(lambda self: self.spec.name)
    seam = property(lambda self: self.spec.seam)
    description = property(lambda self: self.spec.description)
    needs = property(lambda self: self.spec.needs)

    def places(self, model, seams):
        if self.seam != MODEL:
            return list(self.applies(seams))
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


def _conv_with(conv, weight=None, **changes):
    """A Conv2D like `conv` with its stride, padding or groups changed, holding `conv`'s parameters (or
    `weight`) under the same names (a wrapper layer would rename them)."""
    weight = conv.weight.numpy() if weight is None else weight
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


def _with_class(layer, suffix, namespace):
    """`layer` made an instance of a subclass of its class with `namespace`: its parameters, settings and
    names kept (a wrapper layer would rename its parameters), its type no longer the port's."""
    layer.__class__ = type(f"{type(layer).__name__}{suffix}", (type(layer),), namespace)


def _stuck_in_mode(training):
    """A layer whose mode stays `training` whatever model.train() or eval() set."""
    def mutate(layer):
        _with_class(layer, "StuckInTraining" if training else "StuckInEval",
                    {"training": property(lambda self: training, lambda self, value: None)})
    return mutate


def _hardsigmoid_slope(layer):
    _with_class(layer, "Slope02", {"forward": lambda self, x: paddle.nn.functional.hardsigmoid(x, slope=0.2)})


def _rounded_through_float32(layer):
    for parameter in layer.parameters(include_sublayers=False):
        value = parameter.numpy()
        parameter.set_value(value.astype(np.float32).astype(value.dtype))


def _has_own_parameters(layer):
    return isinstance(layer, (nn.Conv2D, nn.Linear, *NORMS)) and bool(layer.parameters(include_sublayers=False))


def _is_depthwise(layer):
    return isinstance(layer, nn.Conv2D) and layer._groups > 1 and layer._groups == layer._in_channels


def _dense_from_depthwise(conv):
    """A dense Conv2D whose kernel for every input channel is the depthwise one of its output channel."""
    return _conv_with(conv, groups=1, weight=np.repeat(conv.weight.numpy(), conv._in_channels, axis=1))


def _unbiased_running_variance(norm):
    """After Paddle's update (old * m + biased batch variance * (1 - m)), the unbiased estimator's: plus
    (1 - m) * biased / (n - 1), n the values per channel."""
    base = type(norm)

    def forward(self, x):
        output = base.forward(self, x)
        if self.training and not self._use_global_stats:
            axes = [axis for axis in range(x.ndim) if axis != 1]
            count = int(np.prod(x.shape)) // x.shape[1]
            with paddle.no_grad():
                biased = x.var(axis=axes, unbiased=False)
                self._variance.set_value(self._variance + (1.0 - self._momentum) * biased / (count - 1))
        return output
    _with_class(norm, "UnbiasedVariance", {"forward": forward})


def _use_global_stats(norm):
    norm._use_global_stats = True


def layer_norm_computed(norm, axes_count, epsilon_outside_sqrt=False):
    """The LayerNorm computing its statistics over its input's last `axes_count` axes, its epsilon added
    inside the square root or (a hand-written port's (x - mean) / (std + eps)) outside it; its affine
    parameters, of its own normalized shape, over the same trailing axes as before. The epsilon in float32, as Paddle's
    LayerNorm adds it in float64 too (docs/alignment.md, Mutation testing)."""
    def forward(self, x):
        epsilon = float(np.float32(self._epsilon))
        axes = list(range(x.ndim - axes_count, x.ndim))
        centered = x - x.mean(axis=axes, keepdim=True)
        variance = (centered * centered).mean(axis=axes, keepdim=True)
        if epsilon_outside_sqrt:
            normalized = centered / (variance.sqrt() + epsilon)
        else:
            normalized = centered / (variance + epsilon).sqrt()
        if self.weight is not None:  # Paddle keeps the affine parameters flat
            normalized = normalized * self.weight.reshape(self._normalized_shape)
        return normalized if self.bias is None else normalized + self.bias.reshape(self._normalized_shape)
    _with_class(norm, "EpsilonOutsideSqrt" if epsilon_outside_sqrt else f"Over{axes_count}Axes",
                {"forward": forward})


def _other_normalized_axes(norm):
    """One trailing axis fewer than the LayerNorm normalizes over, or, over one axis, one more (the axis
    before it): a port that flattens or keeps a dimension the reference does not."""
    count = len(norm._normalized_shape)
    layer_norm_computed(norm, count - 1 if count > 1 else 2)


def _epsilon_outside_sqrt(norm):
    layer_norm_computed(norm, len(norm._normalized_shape), epsilon_outside_sqrt=True)


class _ScaledIdentity(nn.Layer):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def _is_residual_block(layer):
    """paddle.vision's ResNet blocks (identity through `downsample`) and MobileNetV2's inverted residuals
    that add their input."""
    return (type(layer).__name__ in ("BasicBlock", "BottleneckBlock") and hasattr(layer, "downsample")
            or type(layer).__name__ == "InvertedResidual" and getattr(layer, "use_res_connect", False))


def _identity_scaled(factor):
    """The block's identity path times `factor` (0: left out, 2: added twice)."""
    def mutate(block):
        if type(block).__name__ == "InvertedResidual":
            base = type(block)
            _with_class(block, f"Identity{factor:g}",
                        {"forward": lambda self, x: base.forward(self, x) + (factor - 1.0) * x})
        elif block.downsample is None:
            block.downsample = _ScaledIdentity(factor)
        else:
            base = type(block.downsample)
            _with_class(block.downsample, f"Times{factor:g}",
                        {"forward": lambda self, x: base.forward(self, x) * factor})
    return mutate


def _flip_align_corners(layer):
    layer.align_corners = not layer.align_corners



MODEL_MUTATIONS = {
    "relu->leaky_relu": (_exactly(nn.ReLU), lambda layer: nn.LeakyReLU(0.01)),
    "relu->relu6": (_exactly(nn.ReLU), lambda layer: nn.ReLU6()),
    "relu->gelu": (_exactly(nn.ReLU), lambda layer: nn.GELU()),
    "relu6->relu": (_exactly(nn.ReLU6), lambda layer: nn.ReLU()),
    "hardswish->swish": (_exactly(nn.Hardswish), lambda layer: nn.Swish()),
    "hardsigmoid.slope=0.2": (_exactly(nn.Hardsigmoid), _hardsigmoid_slope),
    "gelu.approximate": (_exactly(nn.GELU), lambda layer: nn.GELU(approximate=not layer._approximate)),
    "max_pool->avg_pool": (_exactly(nn.MaxPool2D), lambda layer: nn.AvgPool2D(**_pool_settings(layer))),
    "avg_pool->max_pool": (_exactly(nn.AvgPool2D), lambda layer: nn.MaxPool2D(**_pool_settings(layer))),
    "max_pool.ceil_mode": (_exactly(nn.MaxPool2D),
                           lambda layer: nn.MaxPool2D(**{**_pool_settings(layer), "ceil_mode": not layer.ceil_mode})),
    "adaptive_avg->adaptive_max": (_exactly(nn.AdaptiveAvgPool2D),
                                   lambda layer: nn.AdaptiveMaxPool2D(layer._output_size)),
    "adaptive_max->adaptive_avg": (_exactly(nn.AdaptiveMaxPool2D),
                                   lambda layer: nn.AdaptiveAvgPool2D(layer._output_size)),
    "interpolate.align_corners": (lambda layer: isinstance(layer, nn.Upsample) and layer.mode != "nearest",
                                  _flip_align_corners),
    "dropout.mode": (_exactly(nn.Dropout), _other_dropout_mode),
    "dropout.p=1-p": (_exactly(nn.Dropout), lambda layer: nn.Dropout(1.0 - layer.p, axis=layer.axis, mode=layer.mode)),
    "dropout.removed": (_exactly(nn.Dropout), lambda layer: nn.Identity()),
    "mode.eval_when_training": (lambda layer: isinstance(layer, (nn.Dropout, *BATCH_NORMS)), _stuck_in_mode(False)),
    "mode.training_when_eval": (lambda layer: isinstance(layer, (nn.Dropout, *BATCH_NORMS)), _stuck_in_mode(True)),
    "bias.zeroed": (_has_bias, _zero_bias),
    "linear.untransposed": (_has_square_weight, _transpose_weight),
    "weights.float32": (_has_own_parameters, _rounded_through_float32),
    "conv.padding+1": (_is(nn.Conv2D), lambda conv: _conv_with(conv, padding=_shifted(conv._padding, 1))),
    "conv.padding-1": (_has_padding, lambda conv: _conv_with(conv, padding=_shifted(conv._padding, -1))),
    "conv.stride+1": (_is(nn.Conv2D), lambda conv: _conv_with(conv, stride=_shifted(conv._stride, 1))),
    "conv.groups=1": (_is_depthwise, _dense_from_depthwise),
    "norm.epsilon*100": (lambda layer: isinstance(layer, NORMS), _scale_epsilon),
    "layer_norm.axes": (_exactly(nn.LayerNorm), _other_normalized_axes),
    "layer_norm.epsilon_outside_sqrt": (_exactly(nn.LayerNorm), _epsilon_outside_sqrt),
    "batch_norm.momentum=1-m": (lambda layer: isinstance(layer, BATCH_NORMS), _flip_momentum_convention),
    "batch_norm.unbiased_variance": (lambda layer: isinstance(layer, BATCH_NORMS), _unbiased_running_variance),
    "batch_norm.use_global_stats": (lambda layer: isinstance(layer, BATCH_NORMS), _use_global_stats),
    "residual.dropped": (_is_residual_block, _identity_scaled(0.0)),
    "residual.doubled": (_is_residual_block, _identity_scaled(2.0)),
}


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
    "optimizer.momentum": (lambda seams: ("optimizer",), lambda build, _: _rebuilt(build, lambda kwargs: {
        **kwargs, "momentum": (1.0 + kwargs.get("momentum", MOMENTUM)) / 2})),
    "optimizer.nesterov": (lambda seams: ("optimizer",), lambda build, _: _after_build(build, _with_nesterov)),
    "optimizer.weight_decay=0": (lambda seams: ("optimizer",),
                                 lambda build, _: _rebuilt(build, lambda kwargs: {**kwargs, "weight_decay": 0.0})),
    "schedule.one_epoch_early": (lambda seams: ("scheduler",), lambda build, _: _after_build(build, _one_epoch_early)),
    "schedule.one_epoch_late": (lambda seams: ("scheduler",), lambda build, _: _after_build(build, _one_epoch_late)),
}

LOSS_MUTATIONS = {
    "loss.term_sign": (lambda seams: seams.LOSS_TERMS,
                       lambda seams, loss, term: seams.reweighted_loss(loss, term, -1.0)),
    "loss.term_weight*10": (lambda seams: seams.LOSS_TERMS,
                            lambda seams, loss, term: seams.reweighted_loss(loss, term, 10.0)),
}


def _without_train_mode(loop):
    """The loop with the model's train() doing nothing: the model trains in whatever mode it is in."""
    def mutated(model, *args, **kwargs):
        with patched([(model, "train", lambda *_, **__: model)]):
            return loop(model, *args, **kwargs)
    return mutated


LOOP_MUTATIONS = {"loop.train_mode_forgotten": (lambda seams: seams.LOOPS, _without_train_mode)}

MUTATIONS = {**MODEL_MUTATIONS, **LOSS_MUTATIONS, **OPTIMIZER_MUTATIONS, **LOOP_MUTATIONS}
MUTATIONS = {name: MUTATIONS[name] for name in (spec.name for spec in CATALOG)}  # the catalog's order
OPERATORS = tuple(Operator(spec, *MUTATIONS[spec.name]) for spec in CATALOG)
MODEL_OPERATORS = tuple(operator for operator in OPERATORS if operator.seam == MODEL)
