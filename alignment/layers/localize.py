"""Pair the layers of the two records, compare them layer by layer, and name the layer where they part.

A record (written by `alignment.layers.side`) holds, for each mode (eval, and train with the suite's
injected dropout masks), every layer's output and the loss's gradient with respect to it, plus a
layer's input where no layer produced it. A layer is a module that called no other module; layers
are listed in the order they ran. Two comparisons:

- chained: both models ran end to end. Walking the layers in the order they ran (forward) or in
  reverse (backward), the first layer whose result differs while what reaches it still agrees is
  where the defect is; every layer after it only inherits the difference.
- isolated: the Paddle process fed each Paddle layer torch's input (and, backward, torch's gradient
  of its output), so each layer is judged on its own, with no inherited error.

Each direction is held to the tolerances of the step of the same name (alignment.tolerances).
"""
import contextlib
import dataclasses
import json
import os
import zipfile

import numpy as np

from greedyhash_common.infra.atomic import atomic_path, write_text

from ..check import KeyResult, StepResult, _failure, compare_arrays, result_as_json, write_reports
from ..paths import case_dir, diff_paths, layer_values_path
from ..sides import PORT, REFERENCE
from ..tolerances import tolerance

MODES = ("eval", "train")
DIRECTIONS = ("forward", "backward")  # also the names of the steps whose failures they explain
CHAINED, ISOLATED = "layers", "layers_isolated"
# (what reaches a layer, what the layer computes from it), as ends of the layer, in each direction
_ENDS = {"forward": ("input", "output"), "backward": ("output", "input")}
_DESCRIBED = {"forward": ("its input", "its output"),
              "backward": ("the gradient of its output", "the gradient of its input")}
NO_COUNTERPART = "no paddle layer pairs with it"
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


def stored_key(layer, mode, direction, end):
    """Where a record keeps a layer's input or output: an input made by another layer is that layer's output."""
    if end == "input" and layer["input_from"] is not None:
        return value_key(mode, direction, layer["input_from"], "output")
    return value_key(mode, direction, layer["name"], end)


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


def pair_layers(torch_layers, paddle_layers, key_map):
    """{paddle layer: torch layer}: a layer with parameters through the converter's key map, a layer without by its position in the parent it is paired with. Layers that pair
    with nothing are left out."""
    torch_layer_of = _torch_layer_of(key_map)
    by_place = {(layer["parent"], layer["position"], _call_suffix(layer["name"])): layer["name"]
                for layer in torch_layers}
    pairs = {}
    for layer in paddle_layers:
        suffix = _call_suffix(layer["name"])
        if layer["parameters"]:
            torch_module = torch_layer_of.get(module_name_of(layer["name"]))
            torch_name = torch_module and torch_module + suffix
        else:
            torch_name = by_place.get((torch_layer_of.get(layer["parent"]), layer["position"], suffix))
        if torch_name is not None:
            pairs[layer["name"]] = torch_name
    return pairs


@dataclasses.dataclass
class LayerRow:
    layer: str  # torch name
    types: str  # "Linear", or "ReLU / LeakyReLU" when the two sides' classes differ
    reaches: KeyResult  # what reaches the layer: its input (forward), the gradient of its output (backward)
    computes: KeyResult  # what the layer computes from it: its output, or the gradient of its input
    isolated: KeyResult  # the same computed by the Paddle layer from torch's values


@dataclasses.dataclass
class Trace:
    mode: str
    direction: str
    rows: list  # in the order the direction runs through the layers

    @property
    def passed(self):
        return all(key.passed for row in self.rows for key in (row.reaches, row.computes, row.isolated))

    def divergence(self):
        """(row, place) of the first layer that differs, place "at" when what reaches it still agrees
        (the layer is where the defect is), "before" when that already differs though no layer before
        it does (the difference comes from outside the layers); None when every layer agrees."""
        for row in self.rows:
            if not row.reaches.passed:
                return row, "before"
            if not row.computes.passed:
                return row, "at"
        return None

    def isolated_failures(self):
        return [row.layer for row in self.rows if not row.isolated.passed]


@dataclasses.dataclass
class Localization:
    dtype: str
    traces: list
    paddle_only: list  # Paddle layers that pair with no torch layer
    case: object = None  # the alignment.cases.Case localized

    @property
    def title(self):
        return f"{self.dtype}, {self.case.label}" if self.case else self.dtype

    @property
    def passed(self):
        return not self.paddle_only and all(trace.passed for trace in self.traces)

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


def _compare(dtype, direction, key, reference, port, overrides):
    """`port` None when the Paddle side has no such value (its layer could not take torch's values)."""
    if port is None:
        return _failure(key, reference.shape, "not recorded by paddle")
    step_key = key.split(".", 1)[1]  # without the mode: named as the step names its keys ("grad.<name>")
    return compare_arrays(key, reference, port, tolerance(direction, dtype, step_key, overrides))


def _row(dtype, mode, direction, layer, paddle_layer, reference, port, isolated, overrides):
    """`isolated`: (torch's values of its layers run alone, Paddle's), or None for a record with no torch
    layers run alone, whose chained values then stand for them (a record of a purely sequential model)."""
    reaches, computes = _ENDS[direction]

    def compared(end, expected, values, layout):
        key = stored_key(layer, mode, direction, end)
        if paddle_layer is None:
            return _failure(key, reference.values[key].shape, NO_COUNTERPART)
        return _compare(dtype, direction, key, expected.get(key, reference.values[key]),
                        values.get(stored_key(layout, mode, direction, end)), overrides)

    alone_torch, alone_paddle = isolated
    return LayerRow(layer["name"], _types(layer, paddle_layer),
                    compared(reaches, reference.values, port.values, paddle_layer),
                    compared(computes, reference.values, port.values, paddle_layer),
                    compared(computes, alone_torch, alone_paddle, layer))


def _trace(dtype, mode, direction, reference, port, isolated, overrides):
    paddle_layers = {layer["name"]: layer for layer in port.layers[mode]}
    torch_layers = reference.layers[mode]
    order = torch_layers if direction == "forward" else torch_layers[::-1]
    return Trace(mode, direction, [_row(dtype, mode, direction, layer, paddle_layers.get(layer["name"]), reference,
                                        port, isolated, overrides) for layer in order])


def compare_records(dtype, reference, port, isolated_values, pair, case=None, reference_isolated=None):
    """The Localization of one precision from torch's Record, Paddle's Record, Paddle's layers run alone
    (`isolated_values`) and torch's (`reference_isolated`; None: torch's chained values stand for them),
    held to the tolerances of `pair`."""
    overrides = pair.TOLERANCES
    isolated = (reference_isolated or {}, isolated_values)
    traces = [_trace(dtype, mode, direction, reference, port, isolated, overrides)
              for mode in MODES for direction in DIRECTIONS]
    torch_names = {layer["name"] for layers in reference.layers.values() for layer in layers}
    paddle_only = sorted({layer["own_name"] for layers in port.layers.values() for layer in layers
                          if layer["name"] not in torch_names})
    return Localization(dtype, traces, paddle_only, case)


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
                                            "place": divergence[1]},
        "isolated_failures": trace.isolated_failures(),
        "layers": [{"layer": row.layer, "type": row.types, "reaches": _key_json(row.reaches),
                    "computes": _key_json(row.computes), "isolated": _key_json(row.isolated)} for row in trace.rows],
    }


def localization_as_json(localization):
    return {"dtype": localization.dtype, "passed": localization.passed, "paddle_only": localization.paddle_only,
            "traces": [_trace_json(trace) for trace in localization.traces]}


def localize_files(workdir, dtype, case, pair):
    """Compare the records the two layer sides wrote for one precision and case; write the diff files and
    the localization (<dtype>/<case>/layers_localization.json); return the Localization."""
    reference, port = load_record(workdir, dtype, case, REFERENCE), load_record(workdir, dtype, case, PORT)
    alone = {side: load_layer_values(layer_values_path(workdir, dtype, case, ISOLATED, side)) for side in (REFERENCE, PORT)}
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
                                           if isolated else "every layer agrees"))
    return f"{title}: {'; '.join(found)}"


def _divergence_sentence(direction, row, place):
    reaches, computes = _DESCRIBED[direction]
    if place == "before":
        return (f"first divergence before {row.layer}: {reaches} already differs though no layer before it does"
                " (the loss, code between layers, or the input)")
    sentence = f"first divergence at {row.layer} ({row.types}): {reaches} agrees, {computes} differs"
    if row.isolated.passed:
        sentence += (", yet fed torch's values it agrees: a choice of the layer (a max-pool's maximum, a ReLU's"
                     " sign) flipped on a difference within tolerance, as rounding does")
    return sentence


def _flags(row, first, place):
    if row is first:
        flags = ["<- first divergence" if place == "at" else "<- differs before this layer"]
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


def format_localization(localization, directions=DIRECTIONS):
    parts = [format_trace(trace, localization.title) for direction in directions
             for trace in localization.traces_of(direction)]
    if localization.paddle_only:
        parts.append(f"paddle layers no torch layer pairs with: {', '.join(localization.paddle_only)}")
    return "\n\n".join(parts)
