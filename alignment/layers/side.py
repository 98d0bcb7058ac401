"""One framework's side of layer-by-layer localization, in its own process.

  python -m alignment.layers.side torch|paddle --case seeded-224px --bit 48 --workdir logs
                                               [--dtypes float32,float64]

Runs the model of one case (weight set and size) of a model pair (--model) on the suite's batch with a
hook on every layer, in eval mode and in training mode with the pair's randomness injected, and takes
the gradient of the backward step's loss with respect to every layer's input and output. Writes
<dtype>/<case>/layers_<side>.npz and the layers' structure, <dtype>/<case>/layers_<side>.json. The
Paddle side runs after the torch side and reads its record: it names its values by torch layer name,
so that the two files have the same keys. Each side runs every layer alone, fed torch's input and
torch's gradient of its output (<dtype>/<case>/layers_isolated_<side>.npz). Only the chosen framework
is imported.
"""
import argparse
import contextlib
import copy
import importlib
import time

import numpy as np

from greedyhash_common.infra.errors import OneLineArgumentParser, exits_cleanly_on_bad_input

from ..cases import Case
from ..pairs import pair_named
from ..paths import images_path, labels_path, layer_values_path, weights_path
from ..sides import configured_side
from ..sides import REFERENCE
from ..steps import StepContext
from ..steps.forward import named_outputs
from .localize import (CHAINED, ISOLATED, MODES, Record, call_name, layer_values_writer, load_layer_values,
                       load_record, module_name_of, pair_layers, stored_key, structure_path, value_key,
                       write_structure)


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m alignment.layers.side", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("framework", choices=("torch", "paddle"))
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--case", required=True, help="the weight set and size, as alignment.cases labels them")
    parser.add_argument("--bit", type=int, required=True)
    parser.add_argument("--workdir", required=True, help="holds inputs/ (batch, weights) and receives the records")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mask-seed", type=int, default=0)
    parser.add_argument("--model", required=True, help="the model pair (alignment.pairs.pair_named)")
    return parser


def build_model(side, hooks, context):
    model = side.build_model(context.bit, context.dtype, context.weights)
    for _, layer in hooks.named_layers(model):
        if getattr(layer, "inplace", False):
            layer.inplace = False  # torchvision's in-place ReLUs would overwrite the recorded output before them
    return model


def enter_mode(side, model, context, mode):
    """Eval is the mode a model is built in; train injects the forward step's randomness (dropout masks).
    A model goes from eval to train once: the masks cannot be taken out again."""
    if mode == "train":
        context.pair.inject_randomness(side, model, context.mask_seed)
        model.train()


@contextlib.contextmanager
def calls_of_every_layer(hooks, model, copy_of):
    """Collect (name, input, output, {id(tensor): copy_of(tensor)}) of every call of every layer, in the order
    the calls finish. The copies are taken as the call ends: a later in-place operation (torchvision's
    residual `out += identity` on a BatchNorm's output) must not change what the layer was seen to compute."""
    calls = []

    def record(name, input_, output, leaf):
        copies = {id(input_): copy_of(input_), id(output): copy_of(output)} if leaf else {}  # containers: no copy
        calls.append((name, input_, output, copies))

    handles = [hooks.watch(layer, lambda input_, output, name=name, leaf=not hooks.child_names(layer):
                           record(name, input_, output, leaf))
               for name, layer in hooks.named_layers(model)]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def _is_inside(name, container):
    return name != container and (container == "" or name.startswith(container + "."))


def innermost(calls):
    """The calls of layers that called no other layer: a container (a Sequential, the model) only hands
    its input to the layers inside it."""
    names = [call[0] for call in calls]
    return [call for call in calls if not any(_is_inside(other, call[0]) for other in names)]


def _describe(hooks, layers_by_name, name, input_from):
    parent, _, own = module_name_of(name).rpartition(".")
    layer = layers_by_name[module_name_of(name)]
    return {"name": name, "type": type(layer).__name__, "parent": parent,
            "position": hooks.child_names(layers_by_name[parent]).index(own),
            "parameters": [f"{module_name_of(name)}.{parameter}" for parameter in hooks.own_parameter_names(layer)],
            "input_from": input_from}


def run_pass(side, hooks, model, context):
    """(layers, {(layer, end): tensor}, {(layer, end): its values as the layer ran}, loss) of one forward
    pass: each layer's output, and its input where no layer produced it (an input made by a layer is that
    layer's output: not stored twice)."""
    images = side.tensor(context.batch(), requires_grad=True)
    with calls_of_every_layer(hooks, model, lambda tensor: np.array(side.numpy(tensor))) as calls:
        outputs = named_outputs(context.pair, model(images))
    total = context.pair.loss_terms(side, outputs, side.tensor(context.labels))["loss_total"]
    layers_by_name = dict(hooks.named_layers(model))
    made_by, layers, tensors, seen, calls_so_far = {}, [], {}, {}, {}
    for module_name, input_, output, copies in innermost(calls):
        copies = copies or {id(input_): np.array(side.numpy(input_)), id(output): np.array(side.numpy(output))}
        calls_so_far[module_name] = calls_so_far.get(module_name, 0) + 1
        name = call_name(module_name, calls_so_far[module_name])
        input_from = made_by.get(id(input_))
        if input_from is not None and not np.array_equal(copies[id(input_)], seen[(input_from, "output")]):
            input_from = None  # changed in place since its layer made it (a residual `+=`): an input of its own
        layers.append(_describe(hooks, layers_by_name, name, input_from))
        if input_from is None:
            tensors[(name, "input")] = input_
            seen[(name, "input")] = copies[id(input_)]
        tensors[(name, "output")] = output
        seen[(name, "output")] = copies[id(output)]
        made_by[id(output)] = name
    return layers, tensors, seen, total


def _gradients(side, total, tensors):
    """{(layer, end): d total / d tensor}, each copied as backward passes through the tensor. Asking
    autograd for them all at once would not do: Paddle accumulates h's gradient in place into the one it
    passes through the straight-through sign, so the gradient it returned for b would include h's own."""
    captured = {}

    def keep(key):
        return lambda grad: captured.__setitem__(key, np.array(side.numpy(grad)))  # a copy, for the same reason

    for key, tensor in {id(tensor): tensor for tensor in tensors.values()}.items():
        tensor.register_hook(keep(key))  # the same method in both frameworks
    side.backward(total)
    return {place: captured[id(tensor)] for place, tensor in tensors.items()}


def record_mode(side, hooks, model, context, mode, reference_layers=None):
    """(layers, {key: array}) of one mode; with the reference's layers of that mode, named by the
    reference's names wherever a layer pairs with one."""
    layers, tensors, seen, total = run_pass(side, hooks, model, context)
    paired = pair_layers(reference_layers, layers, context.pair.key_map()) if reference_layers is not None else {}
    named = {layer["name"]: paired.get(layer["name"], layer["name"]) for layer in layers}
    gradients = _gradients(side, total, tensors)
    values = {}
    for (name, end), tensor in tensors.items():
        values[value_key(mode, "forward", named[name], end)] = seen[(name, end)]
        values[value_key(mode, "backward", named[name], end)] = gradients[(name, end)]
    described = [{**layer, "name": named[layer["name"]], "own_name": layer["name"],
                  "input_from": named.get(layer["input_from"])} for layer in layers]
    return described, values


def _run_alone(side, layer, fed_input, grad_of_output):
    """(output, gradient of the input) of one layer fed these values; no gradient when the output's shape
    is not the fed gradient's (the output then fails on its shape already)."""
    fed = side.tensor(fed_input, requires_grad=True)
    output = layer(fed)
    if tuple(output.shape) != grad_of_output.shape:
        return side.numpy(output), None
    # d sum(output * g) / d input is the layer's backward applied to g; taken from backward, as training
    # does (alignment.sides.paddle_tensors.gradient_of)
    side.backward((output * side.tensor(grad_of_output)).sum())
    return side.numpy(output), side.gradient_of(fed)


def run_isolated(side, hooks, model, mode, layers, reference, add):
    """add(key, array) of each of this side's layers fed the reference's input and gradient of its output,
    under the reference's keys, a layer at a time."""
    by_name = dict(hooks.named_layers(model))
    own_name = {layer["name"]: layer["own_name"] for layer in layers}
    computed = set()
    for layer in reference.layers[mode]:
        output_key = stored_key(layer, mode, "forward", "output")
        grad_key = stored_key(layer, mode, "backward", "input")
        computed |= {output_key, grad_key}
        if layer["name"] in own_name:
            output, grad = _run_alone(side, by_name[module_name_of(own_name[layer["name"]])],
                                      reference.values[stored_key(layer, mode, "forward", "input")],
                                      reference.values[stored_key(layer, mode, "backward", "output")])
            add(output_key, output)
            if grad is not None:
                add(grad_key, grad)
    # What was only fed (the batch, the loss's gradient...) is kept too, so that the file has the
    # reference's keys and reprod_log can compare the two
    for key in reference.values:
        if key.startswith(mode + ".") and key not in computed:
            add(key, reference.values[key])


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
    """(Record, isolated values) of this side: every layer run alone, fed the reference's input and
    gradient of its output (the reference's own Record on the reference side). Both sides run their
    layers alone so that the two are compared like for like: the gradient reaching an input that other
    code also reads (a residual block's shortcut) is more than one layer's share of it.
    `paths`: the .npz archives of the record's values and the isolated values, written a mode (and a layer
    alone) at a time so that the side never holds them all; (None, None): kept in memory."""
    model = build_model(side, hooks, context)
    # The layers run alone need a model of their own, copied before any mask is injected: the mask
    # schedule starts a new step whenever the first dropout asks again, and the layers run alone must
    # see the chained pass's masks, the schedule's first step. (A copy takes a fraction of a build.)
    alone = copy.deepcopy(model)
    chained_path, isolated_path = paths
    layers = {}
    with _values_kept(chained_path) as (add, read_chained):
        for mode in MODES:
            enter_mode(side, model, context, mode)
            layers[mode], mode_values = record_mode(side, hooks, model, context, mode,
                                                    reference.layers[mode] if reference else None)
            for key in list(mode_values):
                add(key, mode_values.pop(key))
    record = Record(layers, read_chained(), env)
    with _values_kept(isolated_path) as (add, read_isolated):
        for mode in MODES:
            enter_mode(side, alone, context, mode)
            run_isolated(side, hooks, alone, mode, layers[mode], reference or record, add)
    return record, read_isolated()


def run(framework, dtypes, case, bit, workdir, threads, mask_seed, pair):
    side = configured_side(framework, threads, pair)
    hooks = importlib.import_module(f"alignment.sides.{framework}_layers")
    images = np.load(images_path(workdir, case.size), allow_pickle=False)
    labels = np.load(labels_path(workdir), allow_pickle=False)
    for dtype in dtypes:
        started = time.perf_counter()
        context = StepContext(bit, dtype, weights_path(workdir, bit, case.weights, side.WEIGHTS_SUFFIX), images,
                              labels, mask_seed, image_size=case.size, pair=pair)
        reference = None if framework == REFERENCE else load_record(workdir, dtype, case, REFERENCE)
        paths = (layer_values_path(workdir, dtype, case, CHAINED, framework),
                 layer_values_path(workdir, dtype, case, ISOLATED, framework))
        record, _ = record_side(side, hooks, context, side.describe(threads, dtype), reference, paths)
        write_structure(record, structure_path(workdir, dtype, case, framework))
        print(f"{framework} layers {case.label} {dtype}: {time.perf_counter() - started:.1f} s", flush=True)


@exits_cleanly_on_bad_input
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    run(args.framework, args.dtypes.split(","), Case.from_label(args.case), args.bit, args.workdir, args.threads,
        args.mask_seed, pair_named(args.model, args.workdir))


if __name__ == "__main__":
    main()
