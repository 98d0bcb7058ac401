"""One framework's side of layer-by-layer localization, in its own process.

  python -m alignment.layers.worker torch|paddle --cases seeded-224px:float32,float64 [rescaled-222px:float32 ...]
                                               --bit 48 --workdir logs [--recorded-fd FD | --reference-fd FD]

Runs the model of each case (weight set and size) of a model pair (--model), in each precision named
after its label, on the suite's batch with a hook on every layer, in eval mode and in training mode
with the pair's randomness injected, and takes the gradient of the backward step's loss with respect
to every layer's input and output. Writes <dtype>/<case>/layers_<side>.npz and the layers' structure,
<dtype>/<case>/layers_<side>.json. The Paddle side reads the torch side's record: it names its values
by torch layer name, so that the two files have the same keys. Each side runs every layer alone, fed
torch's input and torch's gradient of its output (<dtype>/<case>/layers_isolated_<side>.npz). Only the
chosen framework is imported.

One process per side records every case: the suite starts both at once, the torch side names each
record through --recorded-fd once it is written, and the Paddle side, reading the other end as
--reference-fd, pairs it while torch records the next (their start-up and imports overlap too);
without the pipe the Paddle side reads records written before. The Paddle side names its own records
through its --recorded-fd in turn: the suite compares each case while Paddle records the next, and
removes what no later reader needs (alignment.suite.localize).
"""
import argparse
import contextlib
import copy
import dataclasses
import functools
import importlib
import os
import sys
import sysconfig
import time

import numpy as np

from greedyhash_common.infra.errors import OneLineArgumentParser, exits_cleanly_on_bad_input

from ..cases import Case
from ..pairs import pair_named
from ..paths import images_path, labels_path, layer_values_path, weights_path
from ..sides import REFERENCE, configured_side
from ..sides.allocator import free_step_garbage, in_a_side_process
from ..steps import StepContext
from ..steps.forward import named_outputs
from .localize import (CHAINED, ISOLATED, MODES, Record, alone_key, buffer_key, call_name, input_end, input_ends,
                       kept_unit_axes, layer_values_writer, load_layer_values, load_record, module_name_of,
                       pair_layers, stored_key, structure_path, value_key, write_structure)


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m alignment.layers.worker", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("framework", choices=("torch", "paddle"))
    parser.add_argument("--cases", nargs="+", required=True, type=case_run,
                        help="CASE:DTYPE,... each: the weight set and size, as alignment.cases labels them, and"
                             " the precisions to record it in, recorded in this order")
    parser.add_argument("--bit", type=int, required=True)
    parser.add_argument("--workdir", required=True, help="holds inputs/ (batch, weights) and receives the records")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mask-seed", type=int, default=0)
    parser.add_argument("--model", required=True, help="the model pair (alignment.pairs.pair_named)")
    parser.add_argument("--recorded-fd", type=int,
                        help="a pipe to name each record through (recorded_line) once it is written: the torch"
                             " side's is read by the Paddle side, the Paddle side's by the suite")
    parser.add_argument("--reference-fd", type=int,
                        help="(paddle) the pipe the torch side names its records through: each is read once"
                             " named there")
    return parser


def case_run(text):
    """(Case, [dtype]) of a CASE:DTYPE,... argument."""
    label, _, dtypes = text.partition(":")
    return Case.from_label(label), dtypes.split(",")


def recorded_line(case, dtype):
    """What a side sends once its record of `case` in `dtype` is written."""
    return f"{case.label} {dtype}\n".encode()


def wait_for_reference(stream, case, dtype):
    """Return once the torch side names the record of `case` in `dtype` on `stream`; fail if it ends or names
    another."""
    line = stream.readline()
    if line != recorded_line(case, dtype):
        sys.exit(f"error: the torch side ended before recording {case.label} {dtype}" if not line else
                 f"error: the torch side recorded {line.decode(errors='replace').strip()} where {case.label}"
                 f" {dtype} was due")


def build_model(side, hooks, context):
    """The side's model, each of its layers' construction site (the model code that made it) noted in
    `layer.construction_site`: where a layer's operator was chosen, named when it differs."""
    with construction_sites(hooks):
        model = side.build_model(context.bit, context.dtype, context.weights)
    for _, layer in hooks.named_layers(model):
        if getattr(layer, "inplace", False):
            layer.inplace = False  # torchvision's in-place ReLUs would overwrite the recorded output before them
    return model


CONSTRUCTION_SITE = "construction_site"  # the attribute build_model gives each layer
_SUITE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PATHS = sysconfig.get_paths()
_INSTALLED = (_PATHS["purelib"], _PATHS["platlib"])


def _is_python(filename):
    return filename.startswith(_PATHS["stdlib"]) and not filename.startswith(_INSTALLED)


def _is_model_code(filename, code_dirs):
    """Code of a model (the user's, a model zoo's), not of the framework, Python or this suite."""
    if _is_python(filename) or filename.startswith(_SUITE_DIR) or filename.startswith("<"):
        return False
    framework_dirs, model_dirs = code_dirs
    return (not filename.startswith(framework_dirs)) or filename.startswith(model_dirs)


def model_code_line(hooks, frame):
    """"file:line" of the innermost frame from `frame` outwards that runs model code."""
    code_dirs = hooks.code_dirs()
    while frame is not None and frame.f_code.co_filename.startswith(_SUITE_DIR):
        frame = frame.f_back  # this suite's hooks and wrappers
    while frame is not None and not _is_model_code(frame.f_code.co_filename, code_dirs):
        if frame.f_code.co_filename.startswith(_SUITE_DIR):
            return ""  # called by this suite (the model itself): no model code on the way
        frame = frame.f_back
    if frame is None:
        return ""
    filename = frame.f_code.co_filename
    root = next((folder for folder in _INSTALLED if filename.startswith(folder)), None)
    if root is None:  # the user's own code: from the working folder when it is inside it
        root = os.getcwd() if filename.startswith(os.path.join(os.getcwd(), "")) else None
    return f"{os.path.relpath(filename, root) if root else filename}:{frame.f_lineno}"


@contextlib.contextmanager
def construction_sites(hooks):
    """While open, every layer made notes the model code line that made it."""
    layer_class = hooks.layer_class()
    original = layer_class.__init__

    def noting_init(layer, *args, **kwargs):
        if CONSTRUCTION_SITE not in vars(layer):
            vars(layer)[CONSTRUCTION_SITE] = model_code_line(hooks, sys._getframe(1))
        original(layer, *args, **kwargs)

    layer_class.__init__ = noting_init
    try:
        yield
    finally:
        layer_class.__init__ = original


def enter_mode(side, model, context, mode):
    """Eval is the mode a model is built in; train injects the forward step's randomness (dropout masks).
    A model goes from eval to train once: the masks cannot be taken out again."""
    if mode == "train":
        context.pair.inject_randomness(side, model, context.mask_seed)
        model.train()


@dataclasses.dataclass
class Call:
    """One call of a layer, or of a function the model's own code called (unit "function")."""
    name: str  # the module's name; a function's: its caller's, then <function> ("features.1.<__add__>")
    unit: str  # "layer" or "function"
    inputs: list  # the tensors it was fed: a layer's input, a function's tensor arguments not of the model
    output: object
    copies: list  # the values of its inputs and then its output as the call saw them (none for a container)
    layer: object = None  # the module called
    innermost: bool = True  # a layer that called no other layer and no recorded function
    function: object = None  # the function called, and its arguments with the fed tensors marked Fed(i)
    arguments: tuple = ((), {})
    source: str = ""  # the model code line that called the layer or the function
    caller: list = None  # a function's caller's [name, layer, called another layer, ...]: a unit only if it did

    def to_run_again(self):
        """What running the call again needs (its layer or function and arguments), not what it was fed and
        made: kept from a pass to the units run alone, those tensors and copies would hold every value of
        the pass (with both modes kept, ResNet-18's at 224 px in float64 added a GB to a layer side's peak)."""
        return dataclasses.replace(self, inputs=[], output=None, copies=[], caller=None)


@dataclasses.dataclass(frozen=True)
class Fed:
    """Where a function's arguments held its i-th fed tensor."""
    index: int


def _tensor_arguments(hooks, args, kwargs, own_tensors):
    """The flowing tensors among a call's arguments (and in lists of them) that are not the model's own
    parameters or buffers, in order."""
    found = []
    for value in (*args, *kwargs.values()):
        for item in (value if isinstance(value, (list, tuple)) else (value,)):
            if hooks.is_flowing(item) and id(item) not in own_tensors and all(item is not seen for seen in found):
                found.append(item)
    return found


def _marked(value, tensors):
    """`value` with each fed tensor replaced by its Fed index (one level into lists and tuples)."""
    if isinstance(value, (list, tuple)):
        return type(value)(_marked(item, tensors) for item in value)
    return next((Fed(index) for index, tensor in enumerate(tensors) if value is tensor), value)


def _filled(value, fed):
    if isinstance(value, (list, tuple)):
        return type(value)(_filled(item, fed) for item in value)
    return fed[value.index] if isinstance(value, Fed) else value


def call_function(function, arguments, fed):
    """Call a recorded function again with other tensors in the places of those it was fed."""
    args, kwargs = arguments
    return function(*_filled(args, fed), **{name: _filled(value, fed) for name, value in kwargs.items()})


@contextlib.contextmanager
def _functions_watched(hooks, on_call):
    """While open, every watched function (hooks.watched_functions) calls on_call(name, function, args,
    kwargs, caller frame) instead, which calls the function itself; restored afterwards."""
    replaced = []
    for owner, name in hooks.watched_functions():
        original = getattr(owner, name, None)
        if original is None:  # not in this version of the framework (paddle.sigmoid: Paddle 3 only)
            continue
        replaced.append((owner, name, original, name in vars(owner)))

        def watching(*args, _name=name, _original=original, **kwargs):
            return on_call(_name, _original, args, kwargs, sys._getframe(1))

        setattr(owner, name, functools.wraps(original)(watching) if callable(original) else watching)
    try:
        yield
    finally:
        for owner, name, original, own in reversed(replaced):
            if own:
                setattr(owner, name, original)
            else:
                delattr(owner, name)


def _calls_functions_of_its_own(hooks, layer):
    """A layer whose forward may be model code between other layers (a residual block's `+`, a model's
    flatten): one with layers inside and no parameters of its own, not of the framework. Other layers
    are units: what they call is how they compute; so is one that called no other layer in the end."""
    return hooks.child_names(layer) and not hooks.own_parameter_names(layer) and not hooks.is_framework_layer(layer)


@contextlib.contextmanager
def calls_in_run_order(hooks, model, copy_of, functions=False):
    """Collect the Calls of every layer and, with `functions`, of every watched function the model's own
    code calls between layers (_calls_functions_of_its_own), in the order the
    calls finish. Values are copied as a call ends (a function's inputs as it starts): a later in-place
    operation (torchvision's residual `out += identity` on a BatchNorm's output) must not change what the
    call was seen to compute."""
    calls, stack, own_tensors, active = [], [], hooks.model_tensor_ids(model), [False]

    def enter(name, layer):
        if stack:
            stack[-1][2] = True
        stack.append([name, layer, False, model_code_line(hooks, sys._getframe(1))])

    def leave(input_, output):
        name, layer, inner, called_at = stack.pop()
        copies = [] if inner else [copy_of(input_), copy_of(output)]
        calls.append(Call(name, "layer", [input_], output, copies, layer, not inner, source=called_at))

    def on_call(name, function, args, kwargs, caller):
        if active[0] or not stack or not _calls_functions_of_its_own(hooks, stack[-1][1]):
            return function(*args, **kwargs)
        fed = _tensor_arguments(hooks, args, kwargs, own_tensors)
        if not fed:
            return function(*args, **kwargs)
        # an in-place function (torchvision's F.relu(x, inplace=True)) would make its output the tensor its
        # input was: one tensor, so the gradient of its input could not be told from its output's; the same
        # values computed out of place (the model's code goes on with the returned tensor)
        kwargs = {**kwargs, "inplace": False} if kwargs.get("inplace") is True else kwargs
        copies = [copy_of(tensor) for tensor in fed]  # before the call: an in-place `+=` changes its input
        active[0] = True
        try:
            output = function(*args, **kwargs)
        finally:
            active[0] = False
        if hooks.is_flowing(output):
            copies.append(copy_of(output))
            owner = stack[-1][0]
            calls.append(Call(f"{owner}.<{name}>" if owner else f"<{name}>", "function", fed, output, copies,
                              function=function, arguments=(_marked(args, fed), {key: _marked(value, fed)
                                                                                 for key, value in kwargs.items()}),
                              source=model_code_line(hooks, caller), caller=stack[-1]))
        return output

    handles = []
    for name, layer in hooks.named_layers(model):
        handles.append(hooks.watch_entry(layer, lambda name=name, layer=layer: enter(name, layer)))
        handles.append(hooks.watch(layer, leave))
    watching = _functions_watched(hooks, on_call) if functions else contextlib.nullcontext()
    try:
        with watching:
            yield calls
    finally:
        for handle in handles:
            handle.remove()


def _operator(hooks, call):
    if call.unit == "function":
        return {}
    return {name: list(value) if isinstance(value, tuple) else value
            for name, value in hooks.operator_attributes(call.layer).items() if name != CONSTRUCTION_SITE}


def _describe(hooks, call, name, inputs_from):
    parent, _, own = module_name_of(name).rpartition(".")
    is_layer = call.unit == "layer"
    return {"name": name, "unit": call.unit,
            "type": type(call.layer).__name__ if is_layer else call.function.__name__.strip("_"),
            "parent": parent, "operator": _operator(hooks, call),
            "source": getattr(call.layer, CONSTRUCTION_SITE, "?") if is_layer else call.source,
            "called_at": call.source if is_layer else "",
            "parameters": [f"{module_name_of(name)}.{parameter}" for parameter in hooks.own_parameter_names(call.layer)]
            if is_layer else [],
            "buffers": sorted(hooks.own_buffers(call.layer)) if is_layer else [],
            "inputs": inputs_from}


def run_pass(side, hooks, model, context, functions=False):
    """(units, {(unit, end): tensor}, {(unit, end): its values as the unit ran}, loss, {unit: Call}) of one
    forward pass: each unit's output, and its inputs where no unit produced them (an input made by a
    unit is that unit's output: not stored twice). A unit: a layer that called no other layer (a
    container only hands its input on), or, with `functions`, a function the model's own code called."""
    images = side.tensor(context.batch(), requires_grad=True)
    with calls_in_run_order(hooks, model, lambda tensor: np.array(side.numpy(tensor)), functions) as calls:
        outputs = named_outputs(context.pair, model(images))
    total = context.pair.loss_terms(side, outputs, side.tensor(context.labels))["loss_total"]
    made_by, units, tensors, seen, calls_so_far, by_name = {}, [], {}, {}, {}, {}
    for call in calls:
        if not (call.innermost if call.unit == "layer" else call.caller[2]):
            continue
        calls_so_far[call.name] = calls_so_far.get(call.name, 0) + 1
        name = call_name(call.name, calls_so_far[call.name])
        inputs_from = []
        for index, input_ in enumerate(call.inputs):
            source = made_by.get(id(input_))
            if source is not None and not np.array_equal(call.copies[index], seen[(source, "output")]):
                source = None  # changed in place since its unit made it (a residual `+=`): an input of its own
            inputs_from.append(source)
            if source is None:
                tensors[(name, input_end(index))] = input_
                seen[(name, input_end(index))] = call.copies[index]
        units.append(_describe(hooks, call, name, inputs_from))
        tensors[(name, "output")] = call.output
        seen[(name, "output")] = call.copies[-1]
        made_by[id(call.output)] = name
        by_name[name] = call
    return units, tensors, seen, total, by_name


def _gradients(side, total, tensors, seen):
    """{(layer, end): d total / d tensor}, each copied as backward passes through the tensor. Asking
    autograd for them all at once would not do: Paddle accumulates h's gradient in place into the one it
    passes through the straight-through sign, so the gradient it returned for b would include h's own."""
    captured = {}

    def keep(key):
        return lambda grad: captured.__setitem__(key, np.array(side.numpy(grad)))  # a copy, for the same reason

    for key, tensor in {id(tensor): tensor for tensor in tensors.values()}.items():
        tensor.register_hook(keep(key))  # the same method in both frameworks
    side.backward(total)
    # a tensor the loss does not depend on gets no gradient: zero
    return {place: captured.get(id(tensor), np.zeros_like(seen[place])) for place, tensor in tensors.items()}


PORT_ONLY = "paddle:"  # the prefix of a Paddle unit's name in its record when no torch unit pairs with it


def _buffer_values(hooks, model, units, torch_key_of, mode):
    """{key: array} of every unit's buffers (BatchNorm's running statistics) after the pass of `mode`, by
    their torch key (`torch_key_of`: {own key: torch key}; a buffer it does not name is not compared)."""
    layers_by_name = dict(hooks.named_layers(model))
    values = {}
    for unit in units:
        if unit["unit"] != "layer" or not unit["buffers"]:
            continue
        module = module_name_of(unit["own_name"])
        for buffer, array in hooks.own_buffers(layers_by_name[module]).items():
            torch_key = torch_key_of.get(f"{module}.{buffer}" if module else buffer)
            if torch_key is not None:
                values[buffer_key(mode, torch_key)] = array
    return values


def record_mode(side, hooks, model, context, mode, reference_layers=None, functions=None):
    """(units, {key: array}) of one mode; with the reference's units of that mode, named by the
    reference's names wherever a unit pairs with one (PORT_ONLY and its own name where none does).
    `functions`: a dict that receives {own name: Call} of the units (Call.to_run_again), and asks for the
    functions the model's code calls to be units too; None: layers only."""
    units, tensors, seen, total, calls = run_pass(side, hooks, model, context, functions is not None)
    if functions is not None:
        functions.update({name: call.to_run_again() for name, call in calls.items()})
    paired = pair_layers(reference_layers, units, context.pair.key_map()) if reference_layers is not None else None
    named = {unit["name"]: unit["name"] if paired is None else paired.get(unit["name"], PORT_ONLY + unit["name"])
             for unit in units}
    gradients = _gradients(side, total, tensors, seen)
    values = {}
    for (name, end), tensor in tensors.items():
        values[value_key(mode, "forward", named[name], end)] = seen[(name, end)]
        values[value_key(mode, "backward", named[name], end)] = gradients[(name, end)]
    described = [{**unit, "name": named[unit["name"]], "own_name": unit["name"],
                  "inputs": [named.get(source) for source in unit["inputs"]]} for unit in units]
    if mode == "train" and functions is not None:
        key_map = context.pair.key_map()
        torch_key_of = ({key: key for key in key_map} if reference_layers is None
                        else {paddle_key: torch_key for torch_key, paddle_key in key_map.items()})
        values.update(_buffer_values(hooks, model, described, torch_key_of, mode))
    return described, values


def _run_alone(side, call, fed_inputs, grad_of_output):
    """(output, [gradient of each input]) of one unit fed these values; no gradients when the output's
    shape is not the fed gradient's, but for axes of length 1 (kept_unit_axes: the output then fails on its
    shape already)."""
    fed = [side.tensor(array, requires_grad=True) for array in fed_inputs]
    # fed through a copy: an in-place function (a residual `+=`) may not write into a leaf that needs a gradient
    through = [tensor.clone() for tensor in fed]
    output = call.layer(through[0]) if call.unit == "layer" else call_function(call.function, call.arguments, through)
    if kept_unit_axes(grad_of_output.shape, output.shape):
        grad_of_output = grad_of_output.reshape(tuple(output.shape))
    if tuple(output.shape) != grad_of_output.shape:
        return side.numpy(output), []
    # d sum(output * g) / d input is the unit's backward applied to g; taken from backward, as training
    # does (alignment.sides.paddle_tensors.gradient_of)
    side.backward((output * side.tensor(grad_of_output)).sum())
    return side.numpy(output), [side.gradient_of(tensor) for tensor in fed]


def _alone_call(call, layers_by_name, unit):
    """The Call a unit runs alone: its layer in the model kept for that, or the function recorded."""
    if call.unit == "function":
        return call
    return dataclasses.replace(call, layer=layers_by_name[module_name_of(unit["own_name"])])


def run_isolated(side, hooks, model, mode, units, calls, reference, add, reference_is_own=False):
    """add(key, array) of each of this side's units fed the reference's inputs and gradient of its output,
    under the reference unit's own keys (alone_key), a unit at a time. On the reference's own side
    (`reference_is_own`) a value the unit's chained run recorded bit for bit is not added again: readers
    take the chained value where the record of units run alone has none (localize.alone_values). For a
    model whose units each read a tensor no other unit reads that is every value (GreedyHash's: 372 MB of
    the layer records `make align` writes)."""
    layers_by_name = dict(hooks.named_layers(model))
    own = {unit["name"]: unit for unit in units}
    for unit in reference.layers[mode]:
        ends = input_ends(unit)
        mine = own.get(unit["name"])
        if mine is None or len(mine["inputs"]) != len(unit["inputs"]):
            continue
        output, grads = _run_alone(side, _alone_call(calls[mine["own_name"]], layers_by_name, mine),
                                   [reference.values[stored_key(unit, mode, "forward", end)] for end in ends],
                                   reference.values[stored_key(unit, mode, "backward", "output")])
        computed = [("forward", "output", output), *(("backward", end, grad) for end, grad in zip(ends, grads))]
        for direction, end, value in computed:
            chained = stored_key(unit, mode, direction, end)
            if not (reference_is_own and recorded_bit_for_bit(value, reference.values[chained])):
                add(alone_key(unit, mode, direction, end), value)


def recorded_bit_for_bit(value, recorded):
    """Whether a value is the recorded array: its dtype, shape and every bit (a NaN never is)."""
    value = np.asarray(value)
    return value.dtype == recorded.dtype and value.shape == recorded.shape and np.array_equal(value, recorded)


@contextlib.contextmanager
def _values_kept(path):
    """(add(key, array), read() -> {key: array}): into the .npz archive `path`, read back lazily once
    written, or into memory when `path` is None."""
    if path is None:
        values = {}
        yield values.__setitem__, lambda: values
        return
    with layer_values_writer(path) as add:
        yield add, lambda: load_layer_values(path)


def record_side(side, hooks, context, env, reference=None, paths=(None, None)):
    """(Record, isolated values) of this side: every unit run alone, fed the reference's inputs and
    gradient of its output (the reference's own Record on the reference side). Both sides run their
    units alone so that the two are compared like for like: the gradient reaching an input that other
    code also reads (a residual block's shortcut) is more than one unit's share of it.
    `paths`: the .npz archives of the record's values and the isolated values, written a mode (and a unit
    alone) at a time so that the side never holds them all; (None, None): kept in memory."""
    model = build_model(side, hooks, context)
    # The units run alone need a model of their own, copied before any mask is injected: the mask
    # schedule starts a new step whenever the first dropout asks again, and the units run alone must
    # see the chained pass's masks, the schedule's first step. (A copy takes a fraction of a build.)
    alone = copy.deepcopy(model)
    chained_path, isolated_path = paths
    layers, calls = {}, {}
    with _values_kept(chained_path) as (add, read_chained):
        for mode in MODES:
            enter_mode(side, model, context, mode)
            calls[mode] = {}
            layers[mode], mode_values = record_mode(side, hooks, model, context, mode,
                                                    reference.layers[mode] if reference else None, calls[mode])
            for key in list(mode_values):
                add(key, mode_values.pop(key))
    record = Record(layers, read_chained(), env)
    with _values_kept(isolated_path) as (add, read_isolated):
        for mode in MODES:
            enter_mode(side, alone, context, mode)
            run_isolated(side, hooks, alone, mode, layers[mode], calls[mode], reference or record, add,
                         reference_is_own=reference is None)
    return record, read_isolated()


def run(framework, runs, bit, workdir, threads, mask_seed, pair, on_recorded=None, reference_stream=None):
    """Record each (case, [dtype]) of `runs` in order; on_recorded(case, dtype) once each is written, which
    returns whether its reader goes on (the later records would be for nobody); the Paddle side waits for
    each record's name on `reference_stream`."""
    side = configured_side(framework, threads, pair)
    hooks = importlib.import_module(f"alignment.sides.{framework}_layers")
    labels = np.load(labels_path(workdir), allow_pickle=False)
    for case, dtypes in runs:
        images = np.load(images_path(workdir, case.size), allow_pickle=False)
        for dtype in dtypes:
            record_case(side, hooks, case, dtype, images, labels, bit, workdir, threads, mask_seed, pair,
                        reference_stream)
            free_step_garbage()  # a case's model and records are not the next one's
            if on_recorded is not None and not on_recorded(case, dtype):
                return


def naming_on(stream):
    """The on_recorded of a side's process: names each record just written on `stream` (binary); False when
    the reader has stopped reading (it failed, and says so)."""
    def named(case, dtype):
        try:
            stream.write(recorded_line(case, dtype))
        except BrokenPipeError:
            return False
        return True
    return named


def record_case(side, hooks, case, dtype, images, labels, bit, workdir, threads, mask_seed, pair, reference_stream):
    if side.NAME != REFERENCE and reference_stream is not None:
        wait_for_reference(reference_stream, case, dtype)
    started = time.perf_counter()  # the record's own time, not the wait for torch's
    context = StepContext(bit, dtype, weights_path(workdir, bit, case.weights, side.WEIGHTS_SUFFIX), images,
                          labels, mask_seed, image_size=case.size, pair=pair)
    reference = None if side.NAME == REFERENCE else load_record(workdir, dtype, case, REFERENCE)
    paths = (layer_values_path(workdir, dtype, case, CHAINED, side.NAME),
             layer_values_path(workdir, dtype, case, ISOLATED, side.NAME))
    record, _ = record_side(side, hooks, context, side.describe(threads, dtype), reference, paths)
    write_structure(record, structure_path(workdir, dtype, case, side.NAME))
    print(f"{side.NAME} layers {case.label} {dtype}: {time.perf_counter() - started:.1f} s", flush=True)


@exits_cleanly_on_bad_input
@in_a_side_process
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    with contextlib.ExitStack() as pipes:
        ends = ((args.recorded_fd, "wb", 0), (args.reference_fd, "rb", -1))  # unbuffered: each name at once
        recorded, reference = (pipes.enter_context(os.fdopen(fd, mode, buffering)) if fd is not None else None
                               for fd, mode, buffering in ends)
        run(args.framework, args.cases, args.bit, args.workdir, args.threads, args.mask_seed,
            pair_named(args.model, args.workdir), naming_on(recorded) if recorded else None, reference)


if __name__ == "__main__":
    main()
