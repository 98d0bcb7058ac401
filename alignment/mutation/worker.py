"""The Paddle process of `python -m alignment.mutation`: lists the mutants, or runs them.

  python -m alignment.mutation.worker list --model PAIR --bit 48 --workdir logs/mutants [case options]
  python -m alignment.mutation.worker run --model PAIR --bit 48 --workdir logs/mutants [...]   (one of several)

`list` writes every mutant of every operator (alignment.mutation.operators) at every place it applies
to, and marks as not viable the ones with which the model no longer runs at the run's sizes (a port
that fails to run needs no suite to be noticed). `run` takes, one after the other, the selected
mutants no other process has claimed; for each it installs the mutation, runs the suite's own steps
(alignment.steps) in float64 in every case a default run checks them in, and compares with the torch
side's values already written in the work folder, with the suite's own checker and tolerances: the
first failing check kills the mutant. A mutant no check kills is then compared with the unmutated
port, model against model and on probes beyond the run's inputs, to tell an equivalent mutant from a
survivor.
"""
import argparse
import contextlib
import dataclasses
import json
import os
import time

import numpy as np

from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import OneLineArgumentParser, exits_cleanly_on_bad_input, one_line_reason

from alignment.cases import add_case_options, run_cases_of
from alignment.check import json_number
from alignment.paths import side_values_path, weights_path
from alignment.pairs import pair_named
from alignment.reprod_format import load_values
from alignment.worker import step_context
from alignment.sides import configured_side, patched, reusing_builds
from alignment.sides.allocator import in_a_side_process
from alignment.steps import check_values, step_cases, step_module
from .catalog import LOOP, LOSS, MODEL, OPTIMIZER
from .files import DTYPE, MUTANT_STEPS, all_mutants_path, result_path, selected_mutants_path
from .operators import OPERATORS
from .score import CONTROL, SIDE_FAILED

OPERATOR_NAMED = {operator.name: operator for operator in OPERATORS}
# The steps that see a seam's mutation first, so that most mutants die in the first check
FIRST_STEPS = {MODEL: ("forward",), LOSS: ("loss", "backward"), OPTIMIZER: ("optim", "train"), LOOP: ("train",),
               CONTROL["seam"]: ()}
# The steps a survivor is probed in: every value its seam can change (the forward step runs the model in
# eval and training mode, the backward step gives every gradient)
PROBE_STEPS = {MODEL: ("forward", "backward"), LOSS: ("loss", "backward"), OPTIMIZER: ("optim", "train"),
               LOOP: ("train",)}
# Probes of a survivor: inputs beyond the run's, on which an equivalent mutant must still agree
IMAGE_GAIN = 1000.0  # pre-activations a thousand times the run's: past every breakpoint of the activations
PROBE_SEED = 7
SHAPE_DTYPE = "float32"  # whether a mutated model runs depends on shapes only, and float32 copies and runs faster
NOT_SETTINGS = ("_full_name", "_dtype", "_built")
SIZE_CHANGES = (-1, -2, -3, -4, 1)  # a stride of up to 4 (AlexNet's first) puts a border elsewhere in one of these


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m alignment.mutation.worker", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("list", "run"))
    parser.add_argument("--bit", type=int, required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mask-seed", type=int, default=0)
    parser.add_argument("--data")
    parser.add_argument("--model", required=True, help="the model pair (alignment.pairs.pair_named)")
    parser.add_argument("--steps", default=",".join(MUTANT_STEPS), help="the steps a mutant is checked in")
    return add_case_options(parser)


def mutant_record(operator, place):
    return {"id": f"{operator.name}@{place}", "operator": operator.name, "place": place, "seam": operator.seam,
            "description": operator.description, "needs": operator.needs}


def _layer_and_parent(model, place):
    parent_name, _, child = place.rpartition(".")
    parent = dict(model.named_sublayers(include_self=True))[parent_name]
    return parent, child


def mutate_model(model, place, operator):
    parent, child = _layer_and_parent(model, place)
    layer = getattr(parent, child)
    replacement = operator.mutate(layer)
    if replacement is not None:
        replacement.train() if layer.training else replacement.eval()
        setattr(parent, child, replacement)
    return model


def installed(side, mutant, seams):
    """The mutation of `mutant` installed in the Paddle side's seams (alignment.mutation.operators; the pair's
    own: `seams`, alignment.mutation.seams)."""
    if mutant["operator"] == CONTROL["operator"]:
        return contextlib.nullcontext()
    operator, place = OPERATOR_NAMED[mutant["operator"]], mutant["place"]
    if operator.seam == MODEL:
        build = side.build_model
        return patched([(side, "build_model", lambda *args: mutate_model(build(*args), place, operator))])
    if operator.seam == LOSS:
        return seams.installed_loss(side, operator.mutate(seams, side.loss, place))
    if operator.seam == LOOP:
        return seams.installed_loop(side, place, operator.mutate)
    return patched([(side, "optimizer_builder", operator.mutate(side.optimizer_builder, place))])


def not_viable(side, args, mutant, sizes):
    """None if the mutated model runs a forward at every size of the run, else why it does not. Any failure
    of the mutated model to run makes the mutant not viable, whatever the framework raises."""
    with installed(side, mutant, args.pair.mutant_seams()):
        try:
            model = side.build_model(args.bit, SHAPE_DTYPE, _first_weights(side, args))
        except Exception as error:
            return f"the model is not built ({one_line_reason(error)})"
        for size in sizes:
            try:
                model(side.tensor(np.zeros((1, 3, size, size), dtype=SHAPE_DTYPE)))
            except Exception as error:
                return f"no forward at {size} px ({one_line_reason(error)})"
    return None


def _first_weights(side, args):
    return weights_path(args.workdir, args.bit, run_cases_of(args, args.pair).weight_sets[0], side.WEIGHTS_SUFFIX)


def list_mutants(side, args):
    started = time.perf_counter()
    run_cases = run_cases_of(args, args.pair)
    sizes = sorted({*run_cases.sizes, run_cases.bulk_size})
    model = side.build_model(args.bit, SHAPE_DTYPE, _first_weights(side, args))
    mutants = []
    for operator in OPERATORS:
        for place in operator.places(model, args.pair.mutant_seams()):
            mutant = mutant_record(operator, place)
            mutant["not_viable"] = not_viable(side, args, mutant, sizes) if operator.seam == MODEL else None
            mutants.append(mutant)
    write_text(all_mutants_path(args.workdir), json.dumps(mutants, indent=1) + "\n")
    print(f"paddle listed {len(mutants)} mutants of {len(OPERATORS)} operators, tried each model mutant at"
          f" {', '.join(map(str, sizes))} px: {time.perf_counter() - started:.1f} s", flush=True)


def planned_checks(mutant, run_cases, pair, checked_steps):
    """(step, case) in the order they are run: of `checked_steps`, those that see the mutant's seam first."""
    first = [step for step in FIRST_STEPS[mutant["seam"]] if step in checked_steps]
    steps = [*first, *(step for step in checked_steps if step not in first)]
    return [(step, case) for step in steps for case in step_cases(step, run_cases, DTYPE, pair)]


def _key_summary(step, case, key):
    return {"step": step, "case": case.label, "key": key.name, "max_abs": json_number(key.max_abs),
            "limit": key.limit, "excess": json_number(key.excess()), "note": key.note}


def largest_change(unmutated, mutated):
    """(key, max |mutated - unmutated| / max |unmutated|) of the key the mutation moved most, or None when
    every value is bit for bit the unmutated port's."""
    changes = [(key, float(np.max(np.abs(mutated[key] - value))) / (float(np.max(np.abs(value))) or 1.0))
               for key, value in unmutated.items() if key in mutated and not np.array_equal(value, mutated[key])]
    return max(changes, key=lambda change: change[1]) if changes else None


def run_checks(side, args, mutant):
    """{"status": "killed", "by": ...} at the first failing check, or {"status": "survived", "closest": ...,
    "moved": ...}: the check that came nearest to failing, and the largest change the mutation made to the
    unmutated port's values (None: it changed none)."""
    closest, moved = None, None
    for step, case in planned_checks(mutant, run_cases_of(args, args.pair), args.pair, args.steps.split(",")):
        try:
            with installed(side, mutant, args.pair.mutant_seams()):
                values = step_module(step, args.pair).run(side, step_context(side, args, args.pair, case, DTYPE))
        except Exception as error:  # the suite's side process fails on this mutant: the suite fails
            return {"status": "killed", "by": {"step": step, "case": case.label, "key": SIDE_FAILED,
                                               "note": one_line_reason(error)}}
        result = check_values(step, DTYPE, _side_values(args, case, step, "torch"), values, args.pair)
        worst = result.worst()
        if not result.passed:
            return {"status": "killed", "by": _key_summary(step, case, worst)}
        if closest is None or worst.excess() > closest["excess"]:
            closest = _key_summary(step, case, worst)
        change = largest_change(_side_values(args, case, step, "paddle"), values)
        if change and (moved is None or change[1] > moved["max_rel"]):
            moved = {"step": step, "case": case.label, "key": change[0], "max_rel": change[1]}
    return {"status": "survived", "closest": closest, "moved": moved}


def _side_values(args, case, step, framework):
    """A side's values of the unmutated run."""
    return load_values(side_values_path(args.workdir, DTYPE, case, step, framework))


def layer_settings(layer):
    """A layer's class and every setting it computes with (its plain attributes, public and private; not the
    instance's generated name, nor the dtype it would create parameters in)."""
    settings = {name: value for name, value in vars(layer).items()
                if isinstance(value, (bool, int, float, str, tuple, list, type(None))) and name not in NOT_SETTINGS}
    return type(layer), settings


def same_models(first, second):
    """True when two models are the same layers, with the same settings, holding the same values."""
    first_layers, second_layers = (dict(model.named_sublayers(include_self=True)) for model in (first, second))
    first_state, second_state = first.state_dict(), second.state_dict()
    return (first_layers.keys() == second_layers.keys()
            and all(layer_settings(layer) == layer_settings(second_layers[name])
                    for name, layer in first_layers.items())
            and first_state.keys() == second_state.keys()
            and all(np.array_equal(value.numpy(), second_state[key].numpy()) for key, value in first_state.items()))


def identical_models(side, args, mutant):
    """True when the mutated model is the unmutated one (same_models) at every weight set of the run: such a
    mutant is equivalent at every input of the run. Every set, since some operators change values, not
    layers (through float32 changes nothing at float32-representable weights, not at others)."""
    for weight_set in run_cases_of(args, args.pair).weight_sets:
        weights = weights_path(args.workdir, args.bit, weight_set, side.WEIGHTS_SUFFIX)
        original = side.build_model(args.bit, DTYPE, weights)
        with installed(side, mutant, args.pair.mutant_seams()):
            if not same_models(original, side.build_model(args.bit, DTYPE, weights)):
                return False
    return True


def perturbed_weights(side):
    """side.build_model with every parameter moved by noise of its own spread: other weights, biases and
    all, than the run's."""
    build = side.build_model

    def build_perturbed(*args):
        model = build(*args)
        rng = np.random.default_rng(PROBE_SEED)
        for parameter in model.parameters():
            value = parameter.numpy()
            parameter.set_value(value + rng.standard_normal(value.shape) * (value.std() + 1e-2))
        return model
    return patched([(side, "build_model", build_perturbed)])


def _resized(images, change):
    """The batch `change` pixels smaller (cropped at the bottom and right) or larger (reflected there)."""
    if change < 0:
        return np.ascontiguousarray(images[..., :change, :change])
    return np.pad(images, ((0, 0), (0, 0), (0, change), (0, change)), mode="reflect")


def probes(side, context):
    """(name, patch, context) of each probe of one step's case: other weights; the images a thousand times
    larger; the images a few pixels smaller or larger (every pool's windows end elsewhere at the border)."""
    found = [("weights perturbed", perturbed_weights(side), context)]
    if context.images is not None:
        found.append(("images x1000", contextlib.nullcontext(),
                      dataclasses.replace(context, images=context.images * IMAGE_GAIN)))
        found += [(f"images {change:+d} px", contextlib.nullcontext(),
                   dataclasses.replace(context, images=_resized(context.images, change),
                                       image_size=context.image_size + change)) for change in SIZE_CHANGES]
    return found


def all_finite(values):
    return all(np.all(np.isfinite(value)) for value in values.values() if np.issubdtype(value.dtype, np.floating))


def probe_difference(side, args, mutant):
    """The first probe on which the mutated port and the unmutated one differ beyond the checker's
    tolerance, or None; a probe on which the unmutated port's own values are not finite (ResNet-18's logits
    past Paddle's cross-entropy cap at the perturbed weights) is skipped."""
    for step in (step for step in PROBE_STEPS[mutant["seam"]] if step in args.steps.split(",")):
        for case in step_cases(step, run_cases_of(args, args.pair), DTYPE, args.pair):
            context = step_context(side, args, args.pair, case, DTYPE)
            for name, patch, probe in probes(side, context):
                with patch:
                    unmutated = step_module(step, args.pair).run(side, probe)
                    if not all_finite(unmutated):  # the port itself overflows there: the probe tells nothing
                        continue
                    try:
                        with installed(side, mutant, args.pair.mutant_seams()):
                            mutated = step_module(step, args.pair).run(side, probe)
                    except Exception as error:  # a mutant that fails where the port runs is not equivalent
                        return {"probe": name, "step": step, "case": case.label, "note": one_line_reason(error)}
                result = check_values(step, DTYPE, unmutated, mutated, args.pair)
                if not result.passed:
                    return {"probe": name, **_key_summary(step, case, result.worst())}
    return None


def run_mutant(side, args, mutant):
    if mutant["seam"] == MODEL and identical_models(side, args, mutant):
        return {"status": "equivalent", "why": "the mutated model is identical to the port, layer for layer"}
    outcome = run_checks(side, args, mutant)
    if outcome["status"] == "survived" and mutant["seam"] != CONTROL["seam"]:
        difference = probe_difference(side, args, mutant)
        if difference is None:
            outcome.update(status="equivalent", why="no probe tells it from the port")
        else:
            outcome["probe_difference"] = difference
    return outcome


def claimed(workdir, index):
    """True for the one process that claims mutant `index` first: each process takes the next unclaimed
    mutant, so a process held up by survivors (a minute each) leaves the rest to the others."""
    try:
        os.close(os.open(result_path(workdir, index) + ".claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def run_unclaimed(side, args):
    with open(selected_mutants_path(args.workdir), encoding="utf-8") as handle:
        selected = json.load(handle)
    for index, mutant in enumerate(selected):
        if not claimed(args.workdir, index):
            continue
        started = time.perf_counter()
        outcome = run_mutant(side, args, mutant)
        outcome["seconds"] = round(time.perf_counter() - started, 1)
        write_text(result_path(args.workdir, index), json.dumps({**mutant, **outcome}, indent=1) + "\n")
        print(f"paddle mutant {index + 1}/{len(selected)} {mutant['id']}: {outcome['status']}"
              f"{_by(outcome)}: {outcome['seconds']} s", flush=True)


def _by(outcome):
    by = outcome.get("by")
    return f" by {by['step']} {by['case']} {by['key']}" if by else ""


@exits_cleanly_on_bad_input
@in_a_side_process
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    args.pair = pair_named(args.model, args.workdir)
    side = configured_side("paddle", args.threads, args.pair)
    os.makedirs(os.path.dirname(result_path(args.workdir, 0)), exist_ok=True)
    with reusing_builds(side):
        (list_mutants if args.action == "list" else run_unclaimed)(side, args)


if __name__ == "__main__":
    main()
