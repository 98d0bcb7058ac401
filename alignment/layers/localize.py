"""Pair the units of the two records, compare them unit by unit, and name the unit where they part.

A record (written by `alignment.layers.worker`) holds, for each mode (eval, and train with the suite's
injected dropout masks), every unit's output and the loss's gradient with respect to it, plus a
unit's inputs where no unit produced them, and after the training-mode pass every layer's buffers. A
unit is a layer that called no other layer, or a function the model's own code called between layers
(a residual `+`, a flatten); units are listed in the order they ran and paired by it (pair_layers).
Three comparisons:

- chained: both models ran end to end, forward (outputs) and backward (gradients, in reverse order).
- isolated: each side fed each of its units torch's inputs (and, backward, torch's gradient of its
  output), so each unit is judged on its own, with no inherited error.
- buffers: each layer's running statistics after the training-mode pass.

The headline of each (Trace.divergence) is the unit whose own difference is the largest, so that a
library's small difference earlier does not hide a defect. Each direction is held to the tolerances of
the step of the same name (alignment.tolerances; buffers to the forward step's).
"""
import contextlib
import dataclasses
import json
import math
import os
import re
import zipfile

import numpy as np

from greedyhash_common.infra.atomic import atomic_path, write_text

from ..check import KeyResult, StepResult, failed_key, compare_arrays, result_as_json, write_reports
from ..paths import case_dir, diff_paths, layer_values_path
from ..sides import PORT, REFERENCE
from ..tolerances import tolerance

MODES = ("eval", "train")
DIRECTIONS = ("forward", "backward")  # also the names of the steps whose failures they explain
BUFFERS = "buffers"  # a trace of the buffers each layer holds after the training-mode pass
CHAINED, ISOLATED = "layers", "layers_isolated"
# (what reaches a layer, what the layer computes from it), as ends of the layer, in each direction
_ENDS = {"forward": ("input", "output"), "backward": ("output", "input")}
_DESCRIBED = {"forward": ("its input", "its output"),
              "backward": ("the gradient of its output", "the gradient of its input"),
              BUFFERS: ("its input", "its running statistics")}
CALL_MARK = "#"


@dataclasses.dataclass
class Record:
    """One side's layers ({mode: [layer description]}, in the order they ran) and values ({key: array})."""
    layers: dict
    values: dict
    env: dict


def structure_path(workdir, dtype, case, side):
    return os.path.join(case_dir(workdir, dtype, case), f"layers_{side}.json")


def localization_path(workdir, dtype, case):
    return os.path.join(case_dir(workdir, dtype, case), "layers_localization.json")


@contextlib.contextmanager
def layer_values_writer(path):
    """Yield add(key, array), which writes one array into the .npz archive `path` at once, so a side never
    holds its whole record; the archive appears only when every array is in (and is removed if the side
    fails). Read back lazily (load_layer_values): the comparison holds a layer's arrays at a time, not four
    whole records (ResNet-50's at 224 px in float64 are 4.5 GB each)."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", allowZip64=True) as archive:
        def add(key, array):
            with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
        yield add


def load_layer_values(path):
    """{key: array}, each array read from the file when it is asked for; no pickle is ever run."""
    return np.load(path, allow_pickle=False)


def write_structure(record, structure_file):
    """A Record's layers and env (JSON); its values are written as the side runs (layer_values_writer)."""
    write_text(structure_file, json.dumps({"env": record.env, "layers": record.layers}, indent=1) + "\n")


def read_record(values_path, structure_file):
    with open(structure_file, encoding="utf-8") as handle:
        structure = json.load(handle)
    return Record(structure["layers"], load_layer_values(values_path), structure["env"])


def load_record(workdir, dtype, case, side):
    return read_record(layer_values_path(workdir, dtype, case, CHAINED, side),
                       structure_path(workdir, dtype, case, side))


def value_key(mode, direction, layer, end):
    """A layer's input or output in one mode, or (backward) the loss's gradient with respect to it."""
    return f"{mode}.{'grad.' if direction == 'backward' else ''}{layer}.{end}"


def input_end(index):
    """The name of a unit's index-th input: "input", "input1"..."""
    return "input" if index == 0 else f"input{index}"


def input_ends(layer):
    return [input_end(index) for index in range(max(1, len(layer["inputs"])))]


def stored_key(layer, mode, direction, end):
    """Where a record keeps a unit's input or output: an input made by another unit is that unit's output."""
    if end.startswith("input"):
        index = int(end[len("input"):] or 0)
        source = layer["inputs"][index] if index < len(layer["inputs"]) else None
        if source is not None:
            return value_key(mode, direction, source, "output")
    return value_key(mode, direction, layer["name"], end)


def alone_key(layer, mode, direction, end):
    """Where a record of units run alone keeps what a unit computed: under the unit's own name, as two
    units fed one tensor (a residual block's conv and its `+`) each give its gradient."""
    return value_key(mode, direction, layer["name"], end)


def buffer_key(mode, torch_key):
    """A buffer's values (BatchNorm's running statistics) after the pass of `mode`, by its torch key."""
    return f"{mode}.buffer.{torch_key}"




def _parent(name):
    return name.rpartition(".")[0]


def _ancestry(name):
    """The name and the names of the layers enclosing it, up to the model itself ("")."""
    names = [name]
    while names[-1]:
        names.append(_parent(names[-1]))
    return names


def _torch_layer_of(key_map):
    """{paddle layer: torch layer} for every layer holding a parameter of the key map, and every layer
    enclosing one."""
    pairs = {}
    for torch_key, paddle_key in key_map.items():
        pairs.update(zip(_ancestry(_parent(paddle_key)), _ancestry(_parent(torch_key))))
    return pairs


def call_name(module_name, call):
    """A layer's name in a record: its module's name, and for a module called again in one pass (a ReLU
    a residual block applies twice) the call's number: "layer1.0.relu", "layer1.0.relu#2"."""
    return module_name if call == 1 else f"{module_name}{CALL_MARK}{call}"


def module_name_of(name):
    return name.split(CALL_MARK)[0]


def _call_suffix(name):
    return name[len(module_name_of(name)):]


# Unit kinds that are one operator under two names, and families of operators that take each other's
# place in a port (an activation for an activation, a pooling for a pooling, a mean over the spatial axes
# for a global pool, a reshape for a reshape)
_SAME_KIND = {"cat": "concat", "iadd": "add", "radd": "add", "rmul": "mul", "multiply": "mul", "view": "reshape",
              "permute": "transpose"}
_FAMILIES = ({"relu", "relu6", "leakyrelu", "gelu", "elu", "selu", "silu", "hardtanh", "hardswish", "hardsigmoid",
              "sigmoid", "tanh", "prelu", "mish", "softplus"},
             {"maxpool", "avgpool", "adaptiveavgpool", "adaptivemaxpool", "mean"},
             {"flatten", "squeeze", "reshape"})


def unit_kind(unit):
    """The operator a unit runs, the same for both frameworks' names of it: "conv", "relu6", "add"..."""
    name = re.sub(r"[123]d$", "", unit["type"].lower().replace("_", ""))
    return _SAME_KIND.get(name, name)


def _likeness(torch_unit, paddle_unit):
    """2: the same operator; 1: operators of a family; 0: units that cannot stand for each other."""
    kinds = unit_kind(torch_unit), unit_kind(paddle_unit)
    if kinds[0] == kinds[1]:
        return 2
    return 1 if any(kinds[0] in family and kinds[1] in family for family in _FAMILIES) else 0


def _align(torch_units, paddle_units):
    """[(torch index, paddle index)] of the most alike pairing that keeps both orders (a weighted
    longest common subsequence)."""
    rows, columns = len(torch_units), len(paddle_units)
    best = [[0] * (columns + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        for j in range(columns - 1, -1, -1):
            likeness = _likeness(torch_units[i], paddle_units[j])
            best[i][j] = max(best[i + 1][j], best[i][j + 1], best[i + 1][j + 1] + likeness if likeness else 0)
    pairs, i, j = [], 0, 0
    while i < rows and j < columns:
        likeness = _likeness(torch_units[i], paddle_units[j])
        if likeness and best[i][j] == best[i + 1][j + 1] + likeness:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif best[i][j] == best[i + 1][j]:
            i += 1
        else:
            j += 1
    return pairs


def _anchors(torch_units, paddle_units, key_map):
    """[(torch index, paddle index)] of the units holding parameters the key map pairs, in both orders."""
    torch_layer_of = _torch_layer_of(key_map)
    index_of = {unit["name"]: index for index, unit in enumerate(torch_units)}
    anchors = []
    for paddle_index, unit in enumerate(paddle_units):
        torch_module = torch_layer_of.get(module_name_of(unit["name"])) if unit["parameters"] else None
        torch_index = index_of.get(torch_module + _call_suffix(unit["name"])) if torch_module is not None else None
        if torch_index is not None and (not anchors or torch_index > anchors[-1][0]):
            anchors.append((torch_index, paddle_index))
    return anchors


def pair_layers(torch_layers, paddle_layers, key_map):
    """{paddle unit: torch unit}, by what runs: the units holding parameters through the converter's key
    map, in the order they ran; between two of them, the units without
    parameters (activations, pools, dropouts, the functions the model's code calls) by the order they
    ran and what they compute (unit_kind), so that the trees' nesting does not matter and an activation
    one side has and the other has not is left unpaired. Units that pair with nothing are left out."""
    anchors = _anchors(torch_layers, paddle_layers, key_map)
    pairs = list(anchors)
    bounds = [(-1, -1), *anchors, (len(torch_layers), len(paddle_layers))]
    for (torch_start, paddle_start), (torch_end, paddle_end) in zip(bounds, bounds[1:]):
        pairs += [(torch_start + 1 + i, paddle_start + 1 + j)
                  for i, j in _align(torch_layers[torch_start + 1:torch_end],
                                     paddle_layers[paddle_start + 1:paddle_end])]
    return {paddle_layers[j]["name"]: torch_layers[i]["name"] for i, j in sorted(pairs)}


@dataclasses.dataclass
class LayerRow:
    layer: str  # torch name
    types: str  # "Linear", or "ReLU / LeakyReLU" when the two sides' classes differ
    reaches: KeyResult  # what reaches the layer: its input (forward), the gradient of its output (backward)
    computes: KeyResult  # what the layer computes from it: its output, or the gradient of its input
    isolated: KeyResult  # the same computed by the Paddle layer from torch's values
    operator: str = ""  # how the two sides' operators differ: "ceil_mode True vs False"; "" when alike
    source: str = ""  # the Paddle model code line that made the layer or called the function
    called_at: str = ""  # a layer's: the Paddle model code line that called it (a model's forward)


# Differences within this many orders of magnitude of the largest one a layer makes on its own are alike
# (one library difference through many layers); a defect's stands orders above (float64's rounding is
# 1e-15, a library's BatchNorm epsilon 1e-10 to 1e-8, a wrong operator's 1e-3 and more)
LIKE_MAGNITUDES = 1


def magnitude(value):
    """The order of magnitude of a relative difference, for ranking differences."""
    return math.inf if not math.isfinite(value) else (math.floor(math.log10(value)) if value > 0 else -math.inf)


@dataclasses.dataclass
class Trace:
    mode: str
    direction: str
    rows: list  # in the order the direction runs through the layers

    @property
    def passed(self):
        return all(key.passed for row in self.rows for key in (row.reaches, row.computes, row.isolated))

    def divergence(self, ignored=()):
        """(row, place) of the layer where the trace's difference starts; None when every layer agrees.
        A layer that differs fed torch's values computes something else: of those, the first in run order
        whose own difference is within LIKE_MAGNITUDES orders of magnitude of the largest, place "at"
        when what reaches it in the chain agrees, "within" when that differs already (a smaller
        difference started before it: a library's rounding, such as BatchNorm's float32 epsilon, does not
        hide a defect after it). When every layer agrees fed torch's values, the first layer whose
        result differs while what reaches it agrees ("at": a choice flipped), or "before" when what
        reaches it already differs though no layer before it does. Layers in `ignored` are not taken for
        ones that differ fed torch's values (alignment.verdict.structural_in_float64)."""
        alone = [row for row in self.rows if not row.isolated.passed and row.layer not in ignored]
        if alone:
            largest = max(magnitude(row.isolated.max_rel) for row in alone)
            row = next(row for row in alone if magnitude(row.isolated.max_rel) >= largest - LIKE_MAGNITUDES)
            return row, "at" if row.reaches.passed else "within"
        for row in self.rows:
            if not row.reaches.passed:
                return row, "before"
            if not row.computes.passed:
                return row, "at"
        return None

    def isolated_failures(self, ignored=()):
        return [row.layer for row in self.rows if not row.isolated.passed and row.layer not in ignored]


@dataclasses.dataclass
class Localization:
    dtype: str
    traces: list
    paddle_only: list  # Paddle units that pair with no torch unit, but those that only move values (moves_no_value)
    case: object = None  # the alignment.cases.Case localized
    unpaired: list = dataclasses.field(default_factory=list)  # each unpaired unit, with its paired neighbours

    @property
    def title(self):
        return f"{self.dtype}, {self.case.label}" if self.case else self.dtype

    @property
    def passed(self):
        return all(trace.passed for trace in self.traces)

    def traces_of(self, direction):
        return [trace for trace in self.traces if trace.direction == direction]

    def trace(self, mode, direction):
        return next(trace for trace in self.traces if trace.mode == mode and trace.direction == direction)

    def differing_alone(self, directions=DIRECTIONS):
        """The layers that differ fed torch's values (a Paddle layer that computes something else), in
        the traces of `directions`."""
        return sorted({layer for direction in directions for trace in self.traces_of(direction)
                       for layer in trace.isolated_failures()})


def _types(torch_layer, paddle_layer):
    """One class name when the two agree up to case (Conv2d and Conv2D), both when they differ."""
    if paddle_layer is None or paddle_layer["type"].lower() == torch_layer["type"].lower():
        return torch_layer["type"]
    return f"{torch_layer['type']} / {paddle_layer['type']}"


def _setting(value):
    """A setting as both frameworks would agree on it: (1, 1) and [1, 1] and 1 alike, floats to 12 digits."""
    if isinstance(value, (list, tuple)):
        value = [_setting(item) for item in value]
        return value[0] if value and all(item == value[0] for item in value) else tuple(value)
    return round(value, 12) if isinstance(value, float) else value


def operator_difference(torch_layer, paddle_layer):
    """How two units' operators differ: their kinds ("relu6 vs relu"), or each setting both name with
    another value ("ceil_mode True vs False", "padding 1 vs 0"); "" when alike."""
    if unit_kind(torch_layer) != unit_kind(paddle_layer):
        return f"{unit_kind(torch_layer)} vs {unit_kind(paddle_layer)}"
    torch_settings, paddle_settings = torch_layer.get("operator", {}), paddle_layer.get("operator", {})
    return ", ".join(f"{name} {torch_settings[name]!r} vs {paddle_settings[name]!r}"
                     for name in torch_settings if name in paddle_settings
                     and _setting(torch_settings[name]) != _setting(paddle_settings[name]))


def kept_unit_axes(shape, other):
    """Whether two shapes differ only by axes of length 1 that one framework keeps and the other drops (a
    pool to one value per channel, [N, C, 1, 1], where a mean over the spatial axes gives [N, C]): the same
    values in the same order, compared as such."""
    return tuple(shape) != tuple(other) and [n for n in shape if n != 1] == [n for n in other if n != 1]


def _compare(dtype, direction, key, reference, port, overrides):
    """`port` None when the Paddle side has no such value (its layer could not take torch's values). Values
    whose shapes differ only by dimensions of size 1 are the same values in the same order, where the two
    trees flatten at other places (torch's dropout before its flatten, Paddle's after its reshape): compared
    as torch's shape."""
    if port is None:
        return failed_key(key, reference.shape, "not recorded by paddle")
    if kept_unit_axes(port.shape, reference.shape):
        port = port.reshape(reference.shape)
    step_key = key.split(".", 1)[1]  # without the mode: named as the step names its keys ("grad.<name>")
    return compare_arrays(key, reference, port, tolerance(direction, dtype, step_key, overrides))


def _worst(results):
    """The failing result of the largest relative difference, else the largest of them all."""
    failing = [result for result in results if not result.passed]
    return max(failing or results, key=lambda result: result.max_rel)


def _ends(direction, layer):
    """(the ends that reach a unit, the ends it computes) in a direction: inputs and output forward, the
    gradient of its output and those of its inputs backward."""
    inputs = input_ends(layer)
    return (inputs, ["output"]) if direction == "forward" else (["output"], inputs)


def alone_values(layer, mode, direction, reference, isolated):
    """[(key, torch's value, Paddle's or None)] of what a unit computes in a direction, each side's unit run
    alone fed torch's values (`isolated`: (torch's units run alone, Paddle's)); torch's chained values stand
    for those torch's record of units run alone lacks."""
    alone_torch, alone_paddle = isolated
    found = []
    for end in _ends(direction, layer)[1]:
        key = alone_key(layer, mode, direction, end)
        torch_value = alone_torch[key] if key in alone_torch else reference.values[stored_key(layer, mode, direction, end)]
        found.append((key, torch_value, alone_paddle.get(key)))
    return found


def _row(dtype, mode, direction, layer, paddle_layer, reference, port, isolated, overrides):
    """`isolated`: (torch's values of its units run alone, Paddle's), as alone_values reads them."""
    reaches, computes = _ends(direction, layer)

    def chained(ends):
        return _worst([_compare(dtype, direction, stored_key(layer, mode, direction, end),
                                reference.values[stored_key(layer, mode, direction, end)],
                                port.values.get(stored_key(paddle_layer, mode, direction, end)), overrides)
                       for end in ends])

    alone = _worst([_compare(dtype, direction, key, torch_value, paddle_value, overrides)
                    for key, torch_value, paddle_value in alone_values(layer, mode, direction, reference, isolated)])
    return LayerRow(layer["name"], _types(layer, paddle_layer), chained(reaches), chained(computes), alone,
                    operator_difference(layer, paddle_layer), paddle_layer.get("source", ""),
                    paddle_layer.get("called_at", ""))


def _trace(dtype, mode, direction, reference, port, isolated, overrides):
    paddle_layers = {layer["name"]: layer for layer in port.layers[mode]}
    torch_layers = [layer for layer in reference.layers[mode] if layer["name"] in paddle_layers]
    order = torch_layers if direction == "forward" else torch_layers[::-1]
    return Trace(mode, direction, [_row(dtype, mode, direction, layer, paddle_layers[layer["name"]], reference,
                                        port, isolated, overrides) for layer in order])


def _buffer_trace(dtype, reference, port, overrides, mode="train"):
    """The running statistics each layer's buffers hold after the training-mode pass: what reaches them is
    the layer's input in that pass, what the layer computes its buffers."""
    paddle_layers = {layer["name"]: layer for layer in port.layers[mode]}
    rows = []
    for layer in reference.layers[mode]:
        keys = [buffer_key(mode, f"{module_name_of(layer['name'])}.{name}") for name in layer.get("buffers", ())]
        keys = [key for key in keys if key in reference.values]
        paddle_layer = paddle_layers.get(layer["name"])
        if not keys or paddle_layer is None:
            continue
        buffers = _worst([_compare(dtype, "forward", key, reference.values[key], port.values.get(key), overrides)
                          for key in keys])
        reaches = _worst([_compare(dtype, "forward", stored_key(layer, mode, "forward", end),
                                   reference.values[stored_key(layer, mode, "forward", end)],
                                   port.values.get(stored_key(paddle_layer, mode, "forward", end)), overrides)
                          for end in input_ends(layer)])
        rows.append(LayerRow(layer["name"], _types(layer, paddle_layer), reaches, buffers, buffers,
                             operator_difference(layer, paddle_layer), paddle_layer.get("source", ""),
                             paddle_layer.get("called_at", "")))
    return Trace(mode, BUFFERS, rows)


def moves_no_value(record, name):
    """Whether the unit `name` of a record only moves values: in every mode it ran, fed one input, its output
    holds that input's values in the same order, and the gradient of its input that of its output (a
    flatten, a reshape): no rounding can come from it, and a defect of it shows in float64 alike."""
    for mode in MODES:
        for layer in (layer for layer in record.layers[mode] if layer["name"] == name):
            if len(input_ends(layer)) != 1:
                return False
            for direction in DIRECTIONS:
                fed = record.values[stored_key(layer, mode, direction, "input")]
                made = record.values[value_key(mode, direction, name, "output")]
                if fed.size != made.size or not np.array_equal(fed.ravel(), made.ravel()):
                    return False
    return True


def _unpaired(reference, port):
    """Each unit no unit of the other side pairs with, in the first mode it ran in, with the paired units
    run just before and after it on its side, and whether it only moves values (moves_no_value)."""
    found = {}
    for mode in MODES:
        torch_names = {layer["name"] for layer in reference.layers[mode]}
        paddle_names = {layer["name"] for layer in port.layers[mode]}
        for side, layers, paired in ((REFERENCE, reference.layers[mode], paddle_names),
                                     (PORT, port.layers[mode], torch_names)):
            for index, layer in enumerate(layers):
                own = layer.get("own_name", layer["name"])
                if layer["name"] in paired or (side, own) in found:
                    continue
                before = next((other["name"] for other in layers[index::-1] if other["name"] in paired), None)
                after = next((other["name"] for other in layers[index:] if other["name"] in paired), None)
                found[(side, own)] = {"side": side, "name": own, "type": layer["type"], "mode": mode,
                                      "source": layer.get("source", ""), "after": before, "before": after,
                                      "moves_no_value": moves_no_value(reference if side == REFERENCE else port,
                                                                       layer["name"])}
    return list(found.values())


def compare_records(dtype, reference, port, isolated_values, pair, case=None, reference_isolated=None):
    """The Localization of one precision from torch's Record, Paddle's Record, Paddle's units run alone
    (`isolated_values`) and torch's (`reference_isolated`; None: torch's chained values stand for them),
    held to the tolerances of `pair`."""
    overrides = pair.TOLERANCES
    isolated = (reference_isolated or {}, isolated_values)
    traces = [_trace(dtype, mode, direction, reference, port, isolated, overrides)
              for mode in MODES for direction in DIRECTIONS]
    buffers = _buffer_trace(dtype, reference, port, overrides)
    if buffers.rows:
        traces.append(buffers)
    unpaired = _unpaired(reference, port)
    return Localization(dtype, traces, [unit["name"] for unit in unpaired
                                        if unit["side"] == PORT and not unit["moves_no_value"]], case, unpaired)


def _step_results(localization):
    """Every comparison made, chained and isolated, as the StepResults the suite's diff files show."""
    chained, isolated = {}, {}
    for row in (row for trace in localization.traces for row in trace.rows):
        chained.setdefault(row.reaches.name, row.reaches)
        chained.setdefault(row.computes.name, row.computes)
        isolated.setdefault(row.isolated.name, row.isolated)
    return (StepResult(CHAINED, localization.dtype, list(chained.values())),
            StepResult(ISOLATED, localization.dtype, list(isolated.values())))


def _key_json(key):
    """One comparison as the suite's diff JSON files write it."""
    return result_as_json(StepResult("", "", [key]), env=None)["keys"][key.name]


def _trace_json(trace):
    divergence = trace.divergence()
    return {
        "mode": trace.mode, "direction": trace.direction, "passed": trace.passed,
        "first_divergence": divergence and {"layer": divergence[0].layer, "type": divergence[0].types,
                                            "place": divergence[1], "operator": divergence[0].operator,
                                            "paddle_source": divergence[0].source,
                                            "paddle_called_at": divergence[0].called_at},
        "isolated_failures": trace.isolated_failures(),
        "layers": [{"layer": row.layer, "type": row.types, "reaches": _key_json(row.reaches),
                    "computes": _key_json(row.computes), "isolated": _key_json(row.isolated)} for row in trace.rows],
    }


def localization_as_json(localization):
    return {"dtype": localization.dtype, "passed": localization.passed, "paddle_only": localization.paddle_only,
            "unpaired": localization.unpaired, "traces": [_trace_json(trace) for trace in localization.traces]}


def localize_files(workdir, dtype, case, pair):
    """Compare the records the two layer sides wrote for one precision and case; write the diff files and
    the localization (<dtype>/<case>/layers_localization.json); return the Localization."""
    reference, port = load_record(workdir, dtype, case, REFERENCE), load_record(workdir, dtype, case, PORT)
    alone = {side: load_layer_values(layer_values_path(workdir, dtype, case, ISOLATED, side))
             for side in (REFERENCE, PORT)}
    localization = compare_records(dtype, reference, port, alone[PORT], pair, case, alone[REFERENCE])
    env = {REFERENCE: reference.env, PORT: port.env}
    for result in _step_results(localization):
        write_reports(result, env, *diff_paths(workdir, dtype, case, result.step))
    write_text(localization_path(workdir, dtype, case), json.dumps(localization_as_json(localization), indent=1) + "\n")
    return localization


def verdict(trace, title):
    """One line: where the trace first diverges, and which layers differ on their own (`title`: the
    localization's precision and case)."""
    title = f"{title}, {trace.mode} mode, {trace.direction}"
    if trace.passed:
        return f"{title}: every layer agrees"
    found = []
    divergence = trace.divergence()
    if divergence:
        found.append(_divergence_sentence(trace.direction, *divergence))
    isolated = trace.isolated_failures()
    found.append("fed torch's values, " + (f"{', '.join(isolated)} {'differs' if len(isolated) == 1 else 'differ'}"
                                           if isolated else "every layer agrees within its limit"))
    return f"{title}: {'; '.join(found)}"


def _divergence_sentence(direction, row, place):
    reaches, computes = _DESCRIBED[direction]
    if place == "before":
        return (f"first divergence before {row.layer}: {reaches} already differs though no layer before it does"
                " (the loss, code between layers, an unpaired unit, or the input)")
    operator = f": {row.operator}" if row.operator else ""
    made = f"; paddle's made at {row.source}" if row.source else ""
    called = f", called at {row.called_at}" if row.called_at else ""
    where = f"at {row.layer} ({row.types}{operator}{made}{called})"
    if place == "within":
        return (f"first divergence {where}: fed torch's values, {computes} differs by {row.isolated.max_rel:.1e}"
                f" (max rel), the largest of any layer; in the chain {reaches} already differs by"
                f" {row.reaches.max_rel:.1e}, from a smaller difference before it")
    sentence = f"first divergence {where}: {reaches} agrees, {computes} differs"
    if row.isolated.passed and row.isolated.max_abs:
        sentence += (f", yet fed torch's values it differs within its limit only ({row.isolated.max_rel:.1e} max"
                     " rel): its own difference, added to those of the layers before it, crosses the limit here")
    elif row.isolated.passed:
        sentence += (", yet fed torch's values it agrees: a choice of the layer (a max-pool's maximum, a ReLU's"
                     " sign) flipped on a difference within tolerance, as rounding does")
    return sentence


def _flags(row, first, place):
    if row is first:
        flags = ["<- differs before this layer" if place == "before" else "<- first divergence"]
    else:
        flags = ["differs"] if not row.computes.passed else []
    if not row.isolated.passed:
        flags.append("differs isolated")
    notes = dict.fromkeys(key.note for key in (row.computes, row.isolated) if key.note)
    return "  ".join(flags + list(notes))


def format_trace(trace, title):
    first, place = trace.divergence() or (None, None)
    reaches, computes = _DESCRIBED[trace.direction]
    header = (f"  {'layer':<18} {'type':<20} {'reaches':>9} {'computes':>9} {'':>9} {'':>9} {'isolated':>9} {'':>9}\n"
              f"  {'':<18} {'':<20} {'max rel':>9} {'max abs':>9} {'max rel':>9} {'limit':>9} {'max abs':>9}"
              f" {'max rel':>9}")
    lines = [verdict(trace, title), f"  reaches: {reaches}; computes: {computes}; isolated: computes, by the"
             " Paddle layer fed torch's values; limit: the largest max abs allowed", header]
    for row in trace.rows:
        lines.append(f"{'>' if row is first else ' '} {row.layer:<18} {row.types:<20} {row.reaches.max_rel:9.2e}"
                     f" {row.computes.max_abs:9.2e} {row.computes.max_rel:9.2e} {row.computes.limit:9.2e}"
                     f" {row.isolated.max_abs:9.2e} {row.isolated.max_rel:9.2e}  {_flags(row, first, place)}".rstrip())
    return "\n".join(lines)


def _unpaired_line(unit):
    neighbours = ", ".join(f"{where} {name}" for where, name in (("after", unit["after"]), ("before", unit["before"]))
                           if name)
    moves = ", moves no value" if unit["moves_no_value"] else ""
    return (f"  {unit['side']} {unit['name']} ({unit['type']}, {unit['source']}{moves})"
            f"{': ' + neighbours if neighbours else ''}")


def format_localization(localization, directions=(*DIRECTIONS, BUFFERS)):
    parts = [format_trace(trace, localization.title) for direction in directions
             for trace in localization.traces_of(direction)]
    if localization.unpaired:
        parts.append("\n".join(["units no unit of the other side pairs with (not compared: a difference they make"
                                 " shows in the next paired unit's input), with their paired neighbours:",
                                 *map(_unpaired_line, localization.unpaired)]))
    return "\n\n".join(parts)
