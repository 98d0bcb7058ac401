"""Differences between torch and Paddle themselves, recognised by what the compared values do (never by a
model's name) and named with their correction (alignment.diagnosis uses them).

Of the keys of a check (of_keys):
- the rate of a StepLR schedule: torch multiplies the rate by gamma step by step, Paddle's StepDecay
  computes lr * gamma ** k; the two agree to an ulp or two (0.045 * 0.1 * 0.1 != 0.045 * 0.1 ** 2);
- BatchNorm's running statistics after a training pass, from the statistics before it (the weight set):
  new = (1 - m) * old + m * batch. The ratio of the two sides' updates of the mean is m_torch / m_paddle:
  1 - 2.4e-7 when Paddle holds its momentum 0.9 in float32, 1/9 or 9 when a momentum was copied across the
  two conventions (torch's m is the batch's share, Paddle's the old value's). The variance's update
  ratio beyond the mean's is n / (n - 1) when torch takes the unbiased batch variance and Paddle the
  biased one, n the values a channel normalizes.
Of the layers the localization finds differing when fed torch's values (of_layers), or, when none differs
beyond its limit, of those whose differences within their limits add up along the chain beyond the check's
(ShuffleNetV2's BatchNorms, each 1e-13 to 3e-11 relative against a limit of 1e-10):
- an output shape that differs at a max-pool (ceil_mode) or a convolution (its padding);
- a dropout's eval output scaled by 1 - p (Paddle's downscale_in_infer mode);
- a BatchNorm whose output matches its formula with epsilon float32(1e-5) in float64 (Paddle's);
- an average pool whose input gradient is its output's times float32(1/n) in float64 (Paddle's) where
  torch's divides by n: a pool to one value per channel, or one whose windows all count n values (the
  padding counted: torch's count_include_pad=True, Paddle's exclusive=False);
- a Hardsigmoid whose output is x * float32(0.1666667) + 0.5 clipped (Paddle's slope, held as a float32
  attribute) where torch's is (x + 3) / 6 clipped. Their gradients differ too, and neither is 1/6 in float64:
  Paddle's is its slope, torch's float32(1/6) (ATen's constant `1.0f / 6.0f`).
"""
import dataclasses
import re

import numpy as np

from greedyhash_common.infra.errors import UserInputError
from greedyhash_common.state_dicts.paddle_files import read_paddle_state

from .check import INVARIANT_NAME
from .layers.localize import (ISOLATED, LIKE_MAGNITUDES, alone_values, load_layer_values, load_record, magnitude,
                              stored_key, value_key)
from .paths import layer_values_path, side_values_path, weights_path
from .reprod_format import load_values
from .sides import PORT, REFERENCE

BUFFER = re.compile(r"(?:(iteration\d+)\.|train_)buffer\.(.+)\.(running_mean|running_var)")
RATE_ULPS = 2  # a rate computed by another order of the same products: within two ulps
EPSILON = 1e-5  # BatchNorm's default in both libraries, when torch's record has none; Paddle's enters as float32
# How closely a formula must reproduce the values to name a difference by it (relative to their scale)
FIT = {"float64": 1e-9, "float32": 1e-4}
SHOWN_LAYERS = 3  # layers a reason names before "and N more"
CLOSER = 10  # how many times nearer its own formula than the other library's a side's output must be
# |ratio - 1| of the updates of the running mean below which the momenta differ by float32 rounding only
FLOAT32_MOMENTUM = 1e-6
LARGEST_WINDOW = 4096  # the largest average-pool window whose size is read from its gradients' factor

STEP_LR = ("StepLR's closed form: torch multiplies the rate by gamma at every step, Paddle's StepDecay computes"
           " lr * gamma ** k, equal to {ulps} ulp; correction: compare rates to 2 ulp")
MOMENTUM_PRECISION = ("BatchNorm momentum precision: Paddle holds its momentum in float32 (the running mean's"
                      " updates differ by a factor 1 - {value}); correction: a momentum exact in float32 (0.5,"
                      " 0.875) on both sides, or running statistics compared to float32 precision")
MOMENTUM_CONVENTION = ("BatchNorm momentum convention: the batch's share of the running statistics differs by a"
                       " factor {value} (torch's momentum is the batch's share, Paddle's the old value's: a"
                       " momentum copied across conventions); correction: Paddle's momentum = 1 - torch's")
RUNNING_VARIANCE = ("BatchNorm running variance: torch updates it with the unbiased batch variance, Paddle with the"
                    " biased one (the updates' ratio is n/(n-1), n = {value}: the values a channel normalizes);"
                    " correction: Paddle's variance update times n/(n-1) (alignment/pairs/resnet18_torch_bn.py)")
CEIL_MODE = ("max-pool ceil_mode at {layer}: fed the same input, torch gives {torch}, Paddle {paddle} (ceil_mode"
             " {ceil} in torch); correction: Paddle's ceil_mode={ceil}")
PADDING = ("convolution padding at {layer}: fed the same input, torch gives {torch}, Paddle {paddle} (padding"
           " {more} in Paddle); correction: torch's padding")
DROPOUT_MODE = ("dropout mode at {layer}: Paddle's eval output is torch's times {scale:.4g} (downscale_in_infer,"
                " p = {p:.4g}); correction: mode='upscale_in_train'")
BATCH_NORM_EPSILON = ("BatchNorm epsilon precision at {layer}: Paddle's output (or gradient) is the formula's with"
                      " epsilon float32({epsilon:g}) in float64, torch's with {epsilon:g}; correction: an epsilon exact"
                      " in float32 on both sides, or float64 compared to this difference")
HARDSIGMOID = ("Hardsigmoid formula at {layer}: Paddle computes x * float32(0.1666667) + 0.5 clipped and"
               " back-propagates float32(0.1666667), torch (x + 3) / 6 clipped and back-propagates float32(1/6),"
               " even in float64; correction: torch's forward and gradient in Paddle"
               " (alignment.zoo.hardsigmoid_as_torch)")
ACCUMULATED = (" (each layer within its limit fed torch's values; their differences add up along the chain beyond"
               " the limit at {layers})")
AVERAGE_POOL_GRADIENT = ("average-pool gradient precision at {layer}: Paddle's input gradient is its output's times"
                         " float32(1/{count}) in float64, torch's divided by {count}; correction: for a pool of equal"
                         " windows, its gradient times 1 / ({count} * float32(1/{count}))"
                         " (alignment.zoo.average_pool_gradient_as_torch), else gradients below the pool"
                         " compared to this difference")
# Paddle's Hardsigmoid slope (0.1666667, an attribute held as float32): its forward's and gradient's factor
PADDLE_HARDSIGMOID_SLOPE = float(np.float32(0.1666667))
# the gradient of torch's Hardsigmoid, float32 even in float64
TORCH_HARDSIGMOID_GRADIENT = float(np.float32(1 / 6))

TEMPLATES = (STEP_LR, MOMENTUM_PRECISION, MOMENTUM_CONVENTION, RUNNING_VARIANCE, CEIL_MODE, PADDING, DROPOUT_MODE,
             BATCH_NORM_EPSILON, HARDSIGMOID, AVERAGE_POOL_GRADIENT)
# Each difference's name: its reason's words before the layer or the colon ("BatchNorm running variance")
NAMES = tuple(re.split(r" at \{layer\}|:", template, maxsplit=1)[0] for template in TEMPLATES)


def names_in(reason):
    """The names of the known differences a finding's reason states, in NAMES order."""
    return [name for name in NAMES if name + ":" in reason or name + " at " in reason]


@dataclasses.dataclass
class Evidence:
    """The values the detectors read, each loaded when first asked for:
    step_values(dtype, case, step) -> (torch's, Paddle's {key: array});
    initial(case) -> {torch key: array} of the weight set the case starts from;
    layers(dtype, case) -> (torch's layer Record, Paddle's layers fed torch's values {key: array});
    torch_alone(dtype, case) -> torch's layers run alone on their own values {key: array}."""
    step_values: callable
    initial: callable
    layers: callable
    torch_alone: callable = None


def evidence_of_run(workdir, bit, key_map):
    """The Evidence of a run's folder; `key_map` {torch key: Paddle key}: the pair's."""
    torch_name = {paddle_key: torch_key for torch_key, paddle_key in key_map.items()}

    def step_values(dtype, case, step):
        return tuple(load_values(side_values_path(workdir, dtype, case, step, side)) for side in (REFERENCE, PORT))

    def initial(case):
        state = read_paddle_state(weights_path(workdir, bit, case.weights, ".pdparams"))
        return {torch_name[key]: value for key, value in state.items() if key in torch_name}

    def layers(dtype, case):
        return (load_record(workdir, dtype, case, REFERENCE),
                load_layer_values(layer_values_path(workdir, dtype, case, ISOLATED, PORT)))

    def torch_alone(dtype, case):
        return load_layer_values(layer_values_path(workdir, dtype, case, ISOLATED, REFERENCE))

    return Evidence(_once(step_values), _once(initial), _once(layers), _once(torch_alone))


def _once(function):
    cache = {}

    def cached(*arguments):
        if arguments not in cache:
            cache[arguments] = function(*arguments)
        return cache[arguments]
    return cached


def _readable(function, *arguments):
    """function(*arguments), or None when what it reads is not there (a side that failed before it sent
    them, so the suite kept none) or is not a file the suite wrote."""
    try:
        return function(*arguments)
    except (OSError, KeyError, ValueError, UserInputError):
        return None


def alone_values_of(evidence, dtype, case, mode, direction, layer):
    """[(key, torch's value, Paddle's or None)] of a layer run alone on each side fed torch's values
    (alignment.layers.localize.alone_values); None when the run's folder lacks them."""
    if evidence is None or evidence.torch_alone is None:
        return None
    layers, torch_alone = _readable(evidence.layers, dtype, case), _readable(evidence.torch_alone, dtype, case)
    if layers is None or torch_alone is None:
        return None
    record, paddle_alone = layers
    layer_of = next((item for item in record.layers.get(mode, ()) if item["name"] == layer), None)
    return None if layer_of is None else alone_values(layer_of, mode, direction, record, (torch_alone, paddle_alone))


def of_keys(result, failing, evidence):
    """[(reason, [key])] of the failing keys of a check (alignment.check.StepResult) a known difference
    explains."""
    if evidence is None:
        return []
    values = _readable(evidence.step_values, result.dtype, result.case, result.step)
    if values is None:
        return []
    found = _rates(failing, *values)
    initial = _readable(evidence.initial, result.case) if result.case.weights else None
    if initial is not None:
        found += _batch_norm_statistics(failing, *values, initial, result.dtype)
    return found


def _compared(key, torch_values, paddle_values):
    invariant = INVARIANT_NAME.fullmatch(key)
    if invariant:
        first, second, side = invariant.groups()
        values = torch_values if side == REFERENCE else paddle_values
        return values.get(first), values.get(second)
    return torch_values.get(key), paddle_values.get(key)


def _within_ulps(first, second):
    if first is None or second is None or first.shape != second.shape or not np.issubdtype(first.dtype, np.floating):
        return 0
    ulps = np.abs(first - second) / np.spacing(np.maximum(np.abs(first), np.abs(second)))
    return int(np.ceil(ulps.max())) if ulps.size and np.all(np.isfinite(ulps)) else 0


def _rates(failing, torch_values, paddle_values):
    keys = [key for key in failing if "lr" in re.split(r"[._ ]", key)
            and 0 < _within_ulps(*_compared(key, torch_values, paddle_values)) <= RATE_ULPS]
    if not keys:
        return []
    ulps = max(_within_ulps(*_compared(key, torch_values, paddle_values)) for key in keys)
    return [(STEP_LR.format(ulps=ulps), keys)]


def _fits(target, predicted, dtype):
    scale = float(np.max(np.abs(target))) or 1.0
    return float(np.max(np.abs(target - predicted))) <= FIT[dtype] * scale


def _each_side_its_formula(torch_output, paddle_output, as_torch, as_paddle, dtype):
    """Each side's output fits its library's formula, and Paddle's is CLOSER times nearer its own than
    torch's (two formulas may part by less than FIT: BatchNorm's epsilon 0.001 as float32)."""
    paddle_error = float(np.max(np.abs(paddle_output - as_paddle)))
    return (_fits(torch_output, as_torch, dtype) and _fits(paddle_output, as_paddle, dtype)
            and paddle_error * CLOSER < float(np.max(np.abs(paddle_output - as_torch))))


def _update_ratio(new_torch, new_paddle, old, dtype):
    """a with new_torch - old = a * (new_paddle - old): the ratio of the batch's shares; None if none fits."""
    torch_update, paddle_update = new_torch - old, new_paddle - old
    if not np.any(paddle_update):
        return None
    ratio = float(np.dot(torch_update, paddle_update) / np.dot(paddle_update, paddle_update))
    return ratio if _fits(torch_update, ratio * paddle_update, dtype) else None


def _variance_ratio(new_torch, new_paddle, old, dtype):
    """a with new_torch - old = a * (new_paddle - old) + b * old (torch's momentum times (n/(n-1) - 1) is b):
    the ratio of the batch variances' shares; None if no such line fits."""
    design = np.stack([new_paddle - old, old], axis=1)
    (ratio, offset), *_ = np.linalg.lstsq(design, new_torch - old, rcond=None)
    return float(ratio) if _fits(new_torch - old, design @ np.array([ratio, offset]), dtype) else None


def _batch_norm_statistics(failing, torch_values, paddle_values, initial, dtype):
    """The momentum and variance differences of every BatchNorm whose running statistics fail."""
    layers = {}
    for key in failing:
        match = BUFFER.fullmatch(key)
        if match:
            iteration, layer, statistic = match.groups()
            layers.setdefault(layer, {}).setdefault(iteration, {})[statistic] = key
    found = {}
    for layer, iterations in layers.items():
        first = iterations.get(None) or iterations.get("iteration0")
        reasons = first and _batch_norm_reasons(layer, first, torch_values, paddle_values, initial, dtype)
        for template, value, statistics in reasons or ():
            values, keys = found.setdefault(template, ([], []))
            values.append(value)
            keys.extend(key for named in iterations.values() for statistic, key in named.items()
                        if statistic in statistics)
    return [(template.format(value=_values_text(values)), keys) for template, (values, keys) in found.items()]


def _values_text(values):
    """The values a difference showed in its layers: one, or each distinct one."""
    distinct = sorted(set(values))
    return ", ".join(f"{value:.4g}" if isinstance(value, float) else str(value) for value in distinct)


def _batch_norm_reasons(layer, keys, torch_values, paddle_values, initial, dtype):
    """[(reason's template, its value in this layer, the statistics it explains)] of one BatchNorm's running
    statistics (keys {statistic: key} after its first training pass), or None when a statistic's update
    fits none of them."""
    def ratio_of(statistic, fit):
        key = keys.get(statistic)
        old = initial.get(f"{layer}.{statistic}")
        if key is None:
            return 1.0  # it agrees
        if old is None:
            return None
        return fit(torch_values[key].astype(np.float64), paddle_values[key].astype(np.float64),
                   old.astype(np.float64), dtype)

    momentum, variance = ratio_of("running_mean", _update_ratio), ratio_of("running_var", _variance_ratio)
    if momentum is None or variance is None:
        return None
    reasons, both = [], ("running_mean", "running_var")
    if abs(momentum - 1) > max(FLOAT32_MOMENTUM, FIT[dtype]):  # float32's own rounding moves a ratio by FIT
        reasons.append((MOMENTUM_CONVENTION, round(momentum, 4), both))
    elif momentum != 1 and dtype == "float64":
        reasons.append((MOMENTUM_PRECISION, float(f"{1 - momentum:.2g}"), both))
    unbiased = variance / momentum
    if abs(unbiased - 1) > FIT[dtype]:
        count = unbiased / (unbiased - 1)
        if count < 1.5 or abs(count - round(count)) > 1e-2 * count:
            return None
        reasons.append((RUNNING_VARIANCE, round(count), ("running_var",)))
    return reasons or None


def of_layers(result, localization, evidence):
    """The known differences of every layer that differs fed torch's values in the check's direction, or []
    when one of them is not a known difference (or nothing was localized)."""
    if localization is None or localization.paddle_only:
        return []
    differing = localization.differing_alone([result.step])
    if not differing:  # float32's own rounding adds up too: the rounding rule's (alignment.verdict)
        return _accumulated(result, localization, evidence) if result.dtype == "float64" else []
    reasons = [_layer_reason(localization, layer, result, evidence) for layer in differing]
    if None in reasons:
        return []
    return grouped_reasons(zip(differing, reasons))


def _accumulated(result, localization, evidence):
    """The known differences of layers that differ fed torch's values within their limits only, when those
    differences, added up along the chain, make the check fail: in each failing trace of its direction the
    chain first differs at a layer (its input agrees, its output not), and a known difference explains every
    layer up to it (and, in a backward trace, every layer of the forward pass it runs back through: its
    gradients are computed from those values) whose own difference is within LIKE_MAGNITUDES of the largest
    there; else [] (a difference outside the layers, or a defect too small to pass any layer's limit, stays
    unexplained)."""
    layer_reasons, divergences = {}, []
    for trace in (trace for trace in localization.traces_of(result.step) if not trace.passed):
        row, place = trace.divergence() or (None, None)
        if place != "at":
            return []
        forward = [] if trace.direction == "forward" else next(
            (other.rows for other in localization.traces_of("forward") if other.mode == trace.mode), [])
        before = [other for other in (*forward, *trace.rows[:trace.rows.index(row) + 1]) if other.isolated.max_abs]
        largest = max((magnitude(other.isolated.max_rel) for other in before), default=None)
        suspects = [other for other in before if magnitude(other.isolated.max_rel) >= largest - LIKE_MAGNITUDES]
        if not suspects:
            return []
        for suspect in suspects:
            reason = layer_reasons.get(suspect.layer) or _layer_reason(localization, suspect.layer, result,
                                                                        evidence, trace.mode)
            if reason is None:
                return []
            layer_reasons[suspect.layer] = reason
        divergences.append(row.layer)
    if not divergences:
        return []
    note = ACCUMULATED.format(layers=a_few(list(dict.fromkeys(divergences)), SHOWN_LAYERS))
    return [reason + note for reason in grouped_reasons(layer_reasons.items())]


def grouped_reasons(layer_reasons):
    """One reason per difference that reads alike but for its layer, naming its layers (a few, then how many
    more): "BatchNorm epsilon precision at features.2.1, features.3.1 and 14 more: ..."."""
    layers_of = {}
    for layer, reason in layer_reasons:
        layers_of.setdefault(reason.replace(f" at {layer}:", " at {layers}:", 1), []).append(layer)
    return [reason.replace("{layers}", a_few(layers, SHOWN_LAYERS)) for reason, layers in layers_of.items()]


def a_few(names, shown):
    """The first `shown` names, then how many more: "a, b, c and 14 more"."""
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _forward_row(localization, layer, mode=None):
    """(mode, row) of `layer` in the forward trace of `mode`; without one, in the first forward trace where it
    differs fed torch's values, else in eval."""
    rows = [(trace.mode, row) for trace in localization.traces_of("forward") for row in trace.rows
            if row.layer == layer and mode in (None, trace.mode)]
    return next(((mode, row) for mode, row in rows if not row.isolated.passed), rows[0] if rows else (None, None))


def _layer_reason(localization, layer, result, evidence, mode=None):
    """The known difference `layer` shows fed torch's values (in `mode`; None: where it differs beyond its
    limit), or None."""
    mode, row = _forward_row(localization, layer, mode)
    if row is None:
        return None
    kind = row.types.lower()
    shape_reason = _shape_reason(layer, kind, row.isolated)
    if shape_reason or evidence is None:
        return shape_reason
    values = _readable(evidence.layers, result.dtype, result.case)
    if values is None:
        return None
    record, isolated = values
    torch_alone = _readable(evidence.torch_alone, result.dtype, result.case) if evidence.torch_alone else None
    layer_of = next((item for item in record.layers[mode] if item["name"] == layer), None)
    fed = record.values[stored_key(layer_of, mode, "forward", "input")] if layer_of else None
    output_key = value_key(mode, "forward", layer, "output")
    if fed is None or output_key not in isolated:
        return None
    torch_output, paddle_output = record.values[output_key], isolated[output_key]
    if "dropout" in kind and mode == "eval":
        return _dropout_reason(layer, torch_output, paddle_output, result.dtype)
    if "hardsigmoid" in kind:
        return hardsigmoid_reason(layer, fed, torch_output, paddle_output, result.dtype)
    if "avgpool" in kind and result.step == "backward" and result.dtype == "float64":
        return _average_pool_gradient_reason(localization, layer, record, isolated, torch_alone, mode)
    if "batchnorm" in kind and result.dtype == "float64" and result.case.weights:
        initial = _readable(evidence.initial, result.case) or {}
        epsilon = layer_of.get("operator", {}).get("eps", EPSILON) if layer_of else EPSILON
        reason = _epsilon_reason(layer, mode, fed, torch_output, paddle_output, initial, epsilon)
        if reason is None and result.step == "backward":  # its output agreed, its gradient may not
            reason = _epsilon_gradient_reason(localization, layer, record, isolated, torch_alone, initial,
                                              epsilon, mode)
        return reason
    return None


def _spatial(shape):
    return "x".join(map(str, shape[2:]))


def _shape_reason(layer, kind, isolated):
    if isolated.port_shape is None or len(isolated.shape) != len(isolated.port_shape):
        return None
    torch_shape, paddle_shape = isolated.shape, isolated.port_shape
    if torch_shape[:2] != paddle_shape[:2]:
        return None
    shapes = {"layer": layer, "torch": _spatial(torch_shape), "paddle": _spatial(paddle_shape)}
    larger = paddle_shape[2:] > torch_shape[2:]
    if "pool" in kind and "adaptive" not in kind and all(abs(a - b) <= 1 for a, b in zip(torch_shape, paddle_shape)):
        return CEIL_MODE.format(ceil=not larger, **shapes)
    if "conv" in kind:
        return PADDING.format(more="larger" if larger else "smaller", **shapes)
    return None


def _dropout_reason(layer, torch_output, paddle_output, dtype):
    torch_output, paddle_output = torch_output.astype(np.float64), paddle_output.astype(np.float64)
    if not np.any(torch_output):
        return None
    scale = float(np.sum(torch_output * paddle_output) / np.sum(torch_output * torch_output))
    if 0 < scale < 1 and _fits(paddle_output, scale * torch_output, dtype):
        return DROPOUT_MODE.format(layer=layer, scale=scale, p=1 - scale)
    return None


def _normalized(fed, mean, variance, weight, bias, epsilon):
    shape = (1, -1) + (1,) * (fed.ndim - 2)
    return (weight.reshape(shape) * (fed - mean.reshape(shape)) / np.sqrt(variance.reshape(shape) + epsilon)
            + bias.reshape(shape))


def _statistics(layer, mode, fed, initial):
    """(mean, variance, weight, bias) a BatchNorm normalizes `fed` with in `mode` (the batch's in training, the
    weight set's running ones in eval); None when the weight set lacks them."""
    channels = fed.shape[1]
    axes = tuple(axis for axis in range(fed.ndim) if axis != 1)
    if mode == "train":
        mean, variance = fed.mean(axis=axes), fed.var(axis=axes)
    else:
        mean, variance = initial.get(f"{layer}.running_mean"), initial.get(f"{layer}.running_var")
        if mean is None or variance is None:
            return None
    return (mean, variance, initial.get(f"{layer}.weight", np.ones(channels)),
            initial.get(f"{layer}.bias", np.zeros(channels)))


def _epsilon_reason(layer, mode, fed, torch_output, paddle_output, initial, epsilon=EPSILON):
    statistics = _statistics(layer, mode, fed, initial)
    if statistics is None:
        return None
    as_torch = _normalized(fed, *statistics, epsilon)
    as_paddle = _normalized(fed, *statistics, float(np.float32(epsilon)))
    if _each_side_its_formula(torch_output, paddle_output, as_torch, as_paddle, "float64"):
        return BATCH_NORM_EPSILON.format(layer=layer, epsilon=epsilon)
    return None


def _normalization_gradient(fed, output_gradient, mode, statistics, epsilon):
    """The gradient of a BatchNorm's input from that of its output: through the batch's statistics in training
    mode, a scale in eval."""
    mean, variance, weight, _ = statistics
    shape = (1, -1) + (1,) * (fed.ndim - 2)
    axes = tuple(axis for axis in range(fed.ndim) if axis != 1)
    deviation = np.sqrt(variance.reshape(shape) + epsilon)
    if mode != "train":
        return output_gradient * weight.reshape(shape) / deviation
    normalized = (fed - mean.reshape(shape)) / deviation
    centred = output_gradient - output_gradient.mean(axis=axes, keepdims=True)
    return weight.reshape(shape) / deviation * (centred - normalized * (output_gradient * normalized).mean(
        axis=axes, keepdims=True))


def _backward_values(localization, layer, record, isolated, torch_alone, mode):
    """(mode, its input, the gradient of its output, torch's and Paddle's gradient of its input) of `layer` in
    the backward trace of the forward row's `mode` when it differs there fed torch's values within its limit
    only, else in the first backward trace where it differs beyond it, each side's unit run alone (`torch_alone`:
    torch's units run alone; an input other units read too gets more than this unit's share in the chained
    record: Inception's pools share their block's input); None when the record lacks them."""
    mode = next((trace.mode for trace in localization.traces_of("backward") for row in trace.rows
                 if row.layer == layer and not row.isolated.passed), mode)
    layer_of = next((item for item in record.layers.get(mode, ()) if item["name"] == layer), None)
    paddle_key = value_key(mode, "backward", layer, "input")
    if layer_of is None or paddle_key not in isolated:
        return None
    (_, torch_gradient, _), *_ = alone_values(layer_of, mode, "backward", record, (torch_alone or {}, isolated))
    return (mode, record.values[stored_key(layer_of, mode, "forward", "input")],
            record.values[value_key(mode, "backward", layer, "output")], torch_gradient, isolated[paddle_key])


def _epsilon_gradient_reason(localization, layer, record, isolated, torch_alone, initial, epsilon, mode):
    """BATCH_NORM_EPSILON of a BatchNorm whose gradient alone differs (its output agreed): each side's input
    gradient is the formula's with its epsilon."""
    values = _backward_values(localization, layer, record, isolated, torch_alone, mode)
    if values is None:
        return None
    mode, fed, output_gradient, torch_gradient, paddle_gradient = values
    statistics = _statistics(layer, mode, fed, initial)
    if statistics is None:
        return None
    as_torch, as_paddle = (_normalization_gradient(fed, output_gradient, mode, statistics, value)
                           for value in (epsilon, float(np.float32(epsilon))))
    if _each_side_its_formula(torch_gradient, paddle_gradient, as_torch, as_paddle, "float64"):
        return BATCH_NORM_EPSILON.format(layer=layer, epsilon=epsilon)
    return None


def _average_pool_gradient_reason(localization, layer, record, isolated, torch_alone, mode):
    """AVERAGE_POOL_GRADIENT: each window's output gradient spread over its n inputs divided by n (torch) or
    times float32(1/n) (Paddle). A pool of a larger input to one value per channel has one window, n its
    input's size; a pool
    of windows of one size (counting the padding, as Inception's 3x3 pools do) makes Paddle's gradient
    torch's times n * float32(1/n) everywhere, n read from that factor."""
    values = _backward_values(localization, layer, record, isolated, torch_alone, mode)
    if values is None:
        return None
    _, fed, output_gradient, torch_gradient, paddle_gradient = values
    if output_gradient.shape[2:] == (1,) * (output_gradient.ndim - 2) != fed.shape[2:]:
        count = int(np.prod(fed.shape[2:]))
        spread = np.broadcast_to(output_gradient, fed.shape)
        as_torch, as_paddle = spread / count, spread * float(np.float32(1 / count))
    else:
        count = _window_count(torch_gradient, paddle_gradient)
        if count is None:
            return None
        as_torch, as_paddle = torch_gradient, torch_gradient * paddle_pool_gradient_factor(count)
    if _each_side_its_formula(torch_gradient, paddle_gradient, as_torch, as_paddle, "float64"):
        return AVERAGE_POOL_GRADIENT.format(layer=layer, count=count)
    return None


def paddle_pool_gradient_factor(count):
    """Paddle's average-pool input gradient over torch's for windows of `count` values, in float64:
    count * float32(1/count) (1 where 1/count is exact in float32)."""
    return count * float(np.float32(1 / count))


def _window_count(torch_gradient, paddle_gradient):
    """The smallest window size n whose n * float32(1/n) is the factor from torch's gradient to Paddle's (n and
    2n share it); None when the gradients are not proportional by a factor near 1."""
    torch_gradient, paddle_gradient = torch_gradient.astype(np.float64), paddle_gradient.astype(np.float64)
    norm = float(np.dot(torch_gradient.ravel(), torch_gradient.ravel()))
    if not norm:
        return None
    factor = float(np.dot(torch_gradient.ravel(), paddle_gradient.ravel())) / norm
    counts = np.arange(2, LARGEST_WINDOW + 1)
    misses = np.abs(counts * (1 / counts).astype(np.float32).astype(np.float64) - factor)
    best = int(counts[np.argmin(misses)])
    return best if paddle_pool_gradient_factor(best) != 1 else None


def hardsigmoid_reason(layer, fed, torch_output, paddle_output, dtype):
    """HARDSIGMOID when each side's output is its library's formula and Paddle's is not torch's."""
    fed = fed.astype(np.float64)
    as_torch = np.clip(fed + 3, 0, 6) / 6
    as_paddle = np.clip(fed * PADDLE_HARDSIGMOID_SLOPE + 0.5, 0, 1)
    if _each_side_its_formula(torch_output, paddle_output, as_torch, as_paddle, dtype):
        return HARDSIGMOID.format(layer=layer)
    return None
