"""What the checked inputs exercised in each layer of the reference model, and what they did not.

A check that agrees proves only what its inputs exercised: a ReLU whose inputs are all positive
agrees with any activation that is the identity there, a max-pool whose windows hold equal values
agrees with an average pool, a pool whose input already has its output's size is an identity. For
each case of the forward step, the reference side runs the model with a hook on every layer (eval
mode, and training mode with the injected dropout masks) and the backward of the loss, and `record`
keeps per layer: input and output ranges, whether the loss's gradient reaches the layer, and the
facts of its kind below. `merge` joins the cases: a criterion is met when some case met it (each
case is checked on its own, so a defect shows in the case that exercises it), and in each case a
criterion is met when either mode met it (both modes are checked: a BatchNorm in training mode
normalizes with the batch's statistics, so what follows it sees other ranges than in eval mode; facts
of training mode are prefixed `train_`). A layer with a criterion left unmet is "not covered", named
with the reason.

The criteria, by kind of layer:

- every layer: the loss's gradient reaches its output (backward exercised);
- ReLU: inputs of both signs (LeakyReLU, ELU differ only below 0); inputs beyond 6 (ReLU6's clamp);
- max-pool: windows whose values are not all equal (an average or min pool agrees on such a window); a
  window cut by the border (else ceil_mode agrees);
- adaptive pool: windows of more than one element (else an identity, a copy or an upsampling);
- dropout: in training mode, units both kept and dropped;
- Conv, Linear: inputs not all zero;
- hash codes (h, the output of the pair's `CODE_LAYER`, GreedyHash's): |h| both above and below the pair's
  `CODE_BREAKPOINT` (GreedyHash's quantization term's, 1); values of both signs.
"""
import dataclasses
import importlib

import numpy as np

from .layers.worker import build_model, enter_mode, record_mode
from .layers.localize import MODES, module_name_of, stored_key
from .tolerances import tolerance

RELU_BREAKPOINT = 6.0  # ReLU6's clamp: the largest breakpoint of the common ReLU variants
CODE_ROW = "sign(h)"
# |h| within float32 rounding of 0, where the codes rule excuses a flipped sign (alignment.check.compare_codes)
NEAR_ZERO = tolerance("forward", "float32", "h")


@dataclasses.dataclass(frozen=True)
class LayerCoverage:
    """One layer over every case the forward step ran in: what the checked inputs exercised, and its coverage
    verdict (covered: every criterion of its kind met in some case), read by the terminal, the report and the
    mutation score's explanations alike."""
    layer: str
    type: str
    input: dict  # {"min", "max", "std"} over every case
    output: dict
    facts: dict  # {case label: {fact: value}}
    criteria: dict  # {criterion: [the case labels that met it]}

    @property
    def gaps(self):
        return [criterion for criterion, cases in self.criteria.items() if not cases]

    @property
    def covered(self):
        return not self.gaps

    def as_json(self):
        return {**dataclasses.asdict(self), "covered": self.covered, "gaps": self.gaps}

    @classmethod
    def from_json(cls, entry):
        """The row as_json wrote (report.json's "coverage"), an older run's included."""
        return cls(**{field.name: entry[field.name] for field in dataclasses.fields(cls)})


def _range(array):
    return {"min": float(array.min()), "max": float(array.max()), "std": float(array.std())} if array.size else {}


def _kind(layer_type):
    name = layer_type.lower()
    for kind in ("leakyrelu", "relu", "adaptive", "maxpool", "dropout", "conv", "linear"):
        if kind in name:
            return kind
    return "other"


def _max_pool_facts(side, layer, fed):
    """A window is all-equal exactly where its maximum equals its minimum: max(x) == -max(-x). The windows
    tile the input exactly unless the output keeps its shape without the last row and column: then the
    last window is cut by the border, where ceil_mode and padding change the result."""
    maxima = side.numpy(layer(side.tensor(fed)))
    minima = -side.numpy(layer(side.tensor(-fed)))
    equal = float(np.mean(maxima == minima))
    cut = _border_window_cut(side, layer, fed, maxima.shape)
    return ({"all_equal_windows": equal, "border_window_cut": cut},
            {"windows with distinct values": equal < 1.0, "a window cut by the border": cut})


def _border_window_cut(side, layer, fed, shape):
    try:
        return side.numpy(layer(side.tensor(np.ascontiguousarray(fed[..., :-1, :-1])))).shape == shape
    except Exception:  # each framework raises its own type when one row less holds no window: then none was cut
        return False


def _largest_window(size_in, size_out):
    """The most elements one output of an adaptive pool reads along an axis: output i pools
    [floor(i * in / out), ceil((i + 1) * in / out))."""
    return max(-(-(i + 1) * size_in // size_out) - i * size_in // size_out for i in range(size_out))


def _adaptive_facts(fed, output):
    map_in, map_out = fed.shape[2:], output.shape[2:]
    windows = [_largest_window(size_in, size_out) for size_in, size_out in zip(map_in, map_out)]
    facts = {"map": f"{'x'.join(map(str, map_in))} -> {'x'.join(map(str, map_out))}",
             "largest_window": "x".join(map(str, windows))}
    # windows of one element each make the pool an identity, a copy or an upsampling: any pooling agrees
    return facts, {"windows of more than one element": any(size > 1 for size in windows)}


def _relu_facts(fed):
    negative = float(np.mean(fed < 0))
    largest = float(fed.max())
    return ({"negative_fraction": negative, "largest_input": largest},
            {"inputs of both signs": 0.0 < negative < 1.0,
             f"inputs beyond {RELU_BREAKPOINT:g}": largest > RELU_BREAKPOINT})


def _dropout_facts(fed, output):
    live = fed != 0
    dropped = float(np.mean(output[live] == 0)) if live.any() else 0.0
    return {"dropped_fraction": dropped}, {"units both kept and dropped": 0.0 < dropped < 1.0}


def _kind_facts(side, kind, layer, fed, output, train_values):
    if kind in ("relu", "leakyrelu"):
        return _relu_facts(fed)
    if kind == "maxpool":
        return _max_pool_facts(side, layer, fed)
    if kind == "adaptive":
        return _adaptive_facts(fed, output)
    if kind == "dropout":
        return _dropout_facts(*train_values) if train_values else ({}, {"units both kept and dropped": False})
    if kind in ("conv", "linear"):
        return {}, {"inputs not all zero": bool(np.any(fed != 0))}
    return {}, {}


def code_row(h, breakpoint):
    """The codes' facts and criteria: values of both signs, and |h| on both sides of the pair's breakpoint."""
    magnitude = np.abs(h)
    facts = {"near_0": int(np.count_nonzero(magnitude <= NEAR_ZERO.limit(float(magnitude.max())))),
             "values": int(h.size)}
    criteria = {}
    if breakpoint is not None:
        beyond, below = (int(np.count_nonzero(side)) for side in (magnitude > breakpoint, magnitude < breakpoint))
        facts.update({f"beyond_{breakpoint:g}": beyond, f"below_{breakpoint:g}": below})
        criteria[f"|h| on both sides of {breakpoint:g}"] = beyond > 0 and below > 0
    criteria["h of both signs"] = bool(np.any(h > 0) and np.any(h < 0))
    return {"layer": CODE_ROW, "type": "sign", "input": _range(h), "output": _range(np.sign(h)), "facts": facts,
            "criteria": criteria}


def _ends(layer, values, mode):
    """(input, output, gradient of the output) of a layer in one mode."""
    return tuple(values[stored_key(layer, mode, direction, end)]
                 for direction, end in (("forward", "input"), ("forward", "output"), ("backward", "output")))


@dataclasses.dataclass
class _ModeSummary:
    """What a layer's row takes from one mode: the facts and criteria of its kind (a dropout's are of training
    mode alone), whether the gradient reached it, the ranges of its input and output."""
    facts: dict
    criteria: dict
    reached: bool
    input: dict
    output: dict


def _summary(side, module, kind, ends, mode):
    fed, output, gradient = ends
    if kind == "dropout" and mode == "eval":
        facts, criteria = {}, {}
    else:
        facts, criteria = _kind_facts(side, kind, module, fed, output, (fed, output))
    return _ModeSummary(facts, criteria, bool(np.any(gradient != 0)), _range(fed), _range(output))


def _summaries(side, layers_by_name, layers, values, mode):
    """{layer name: _ModeSummary} of every layer of one mode's pass, so that the mode's values need not be
    kept while the other mode runs (both modes' every value at once: ResNet-50's at 224 px in float64 made
    7.5 GB)."""
    return {layer["name"]: _summary(side, layers_by_name[module_name_of(layer["own_name"])], _kind(layer["type"]),
                                    _ends(layer, values, mode), mode)
            for layer in layers}


def _layer_row(layer, evaluated, trained):
    """The row of one layer from its eval-mode summary and its training-mode one (`trained`: None when it did
    not run there): facts and criteria of eval mode, those of training mode prefixed `train_`, a criterion
    met in either; a dropout's of training mode alone."""
    kind = _kind(layer["type"])
    if kind == "dropout":
        facts, criteria = (dict(trained.facts), dict(trained.criteria)) if trained else (
            {}, {"units both kept and dropped": False})
    else:
        facts, criteria = dict(evaluated.facts), dict(evaluated.criteria)
        if trained:
            facts.update({f"train_{name}": value for name, value in trained.facts.items()})
            criteria = {criterion: met or trained.criteria[criterion] for criterion, met in criteria.items()}
    criteria["gradient reaches it"] = evaluated.reached or bool(trained and trained.reached)
    summaries = [evaluated] + ([trained] if trained else [])
    return {"layer": layer["name"], "type": layer["type"],
            "input": _merged_range([summary.input for summary in summaries]),
            "output": _merged_range([summary.output for summary in summaries]), "facts": facts, "criteria": criteria}


def record(side, context):
    """The coverage of one case: {"rows": [per layer, in the order they ran; then the codes]}. Each mode's
    values are reduced to what the rows take from them before the next mode runs."""
    hooks = importlib.import_module(f"alignment.sides.{side.NAME}_layers")
    model = build_model(side, hooks, context)
    layers_by_name = dict(hooks.named_layers(model))
    layers, summaries, code_row_of_eval = {}, {}, None
    code_layer_name = context.pair.CODE_LAYER
    for mode in MODES:
        enter_mode(side, model, context, mode)
        layers[mode], values = record_mode(side, hooks, model, context, mode)
        summaries[mode] = _summaries(side, layers_by_name, layers[mode], values, mode)
        if mode == "eval" and code_layer_name:
            code_layer = next(layer for layer in layers[mode] if layer["name"] == code_layer_name)
            code_row_of_eval = code_row(values[stored_key(code_layer, mode, "forward", "output")],
                                        context.pair.CODE_BREAKPOINT)
        del values  # not held while the next mode runs
    rows = [_layer_row(layer, summaries["eval"][layer["name"]], summaries["train"].get(layer["name"]))
            for layer in layers["eval"]]
    return {"rows": rows + ([code_row_of_eval] if code_row_of_eval else [])}


def _merged_range(ranges):
    ranges = [item for item in ranges if item]
    if not ranges:
        return {}
    return {"min": min(item["min"] for item in ranges), "max": max(item["max"] for item in ranges),
            "std": max(item["std"] for item in ranges)}


def merge(records):
    """{case label: record} -> [LayerCoverage] over every case: ranges joined, a criterion met when any case
    met it, naming, per criterion, the cases that met it."""
    merged = {}
    for label, record_ in records.items():
        for row in record_["rows"]:
            entry = merged.setdefault(row["layer"], {"layer": row["layer"], "type": row["type"], "inputs": [],
                                                     "outputs": [], "facts": {}, "criteria": {}})
            entry["inputs"].append(row["input"])
            entry["outputs"].append(row["output"])
            entry["facts"][label] = row["facts"]
            for criterion, met in row["criteria"].items():
                entry["criteria"].setdefault(criterion, [])
                if met:
                    entry["criteria"][criterion].append(label)
    return [LayerCoverage(entry["layer"], entry["type"], _merged_range(entry["inputs"]),
                          _merged_range(entry["outputs"]), entry["facts"], entry["criteria"])
            for entry in merged.values()]


def not_covered(rows):
    return [row for row in rows if not row.covered]
