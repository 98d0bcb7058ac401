"""The alignment steps, one module each, written once for both frameworks and every model pair; a pair
may bring steps of its own (OWN_STEPS of its adapter: GreedyHash's data, metric and inference steps).

Adding a step is writing its module and naming it: in STEPS below for every pair, or in a pair's
OWN_STEPS ({name: module}) and STEPS. Nothing else lists the steps: the suite, the sides, `make align-NAME`
and the benchmark take them from the pair.

Every step module has `run(side, context) -> {key: numpy array}`, where `side` is the pair's side of
one framework (`context.pair.side("torch")`, `...("paddle")`: alignment.pairs), and `USES`: what of a case it depends
on (alignment.cases: the weights, the batch's size, the size of the bulk steps), so that it runs once
per case of the run. A step may also declare `CODE_KEYS` (sign codes compared exactly, mapped to the
continuous values that excuse a flip near zero), `INVARIANTS` (pairs of keys that must be equal inside
each side's own file), `DTYPES` (the precisions it means something in; default: all),
`WEIGHT_SETS` (the only weight sets it needs; default: every one of the run),
`float64_only_weight_sets(pair)` (weight sets at which only float64 separates a defect from rounding) and
`TOLERANCES` ({dtype: [(key pattern, Tolerance)]}, read before alignment.tolerances' table; a step the
table does not name must have them).
"""
import dataclasses

import numpy as np

from greedyhash_common.infra.errors import UserInputError

from ..check import check_step
from . import backward, forward, loss, optim, train

STEPS = {"forward": forward, "loss": loss, "backward": backward, "optim": optim, "train": train}


def steps_of(pair):
    """{name: step module} of every step `pair` runs, in its order: the suite's, and its own."""
    steps = {**STEPS, **pair.OWN_STEPS}
    unknown = [step for step in pair.STEPS if step not in steps]
    if unknown:
        raise UserInputError(f"the pair {pair.NAME} runs {', '.join(unknown)}: neither the suite's steps"
                             f" ({', '.join(STEPS)}) nor its own (OWN_STEPS)")
    return {step: steps[step] for step in pair.STEPS}


def step_module(step, pair):
    """The module of `step` of `pair`; a one-line error for a step it does not have."""
    steps = steps_of(pair)
    if step not in steps:
        raise UserInputError(f"unknown step {step} of the pair {pair.NAME}; choose from {', '.join(steps)}")
    return steps[step]


def runs_in(step, dtype, pair):
    return dtype in getattr(step_module(step, pair), "DTYPES", (dtype,))


def step_cases(step, run_cases, dtype, pair):
    """The cases `step` runs in, in the run of `run_cases` (alignment.cases.RunCases), in `dtype` (None: any),
    for the model pair `pair`."""
    module = step_module(step, pair)
    cases = run_cases.of(module.USES)
    only = getattr(module, "WEIGHT_SETS", None)
    if only is not None:
        cases = [case for case in cases if case.weights in only] or [
            case for case in cases if case.weights == run_cases.weight_sets[0]]
    if dtype == "float32":
        only_float64 = getattr(module, "float64_only_weight_sets", lambda _: ())(pair)
        cases = [case for case in cases if case.weights not in only_float64]
    return cases


def code_keys(step, pair):
    """{sign-code key: continuous key} of `step`: its own (the metric's), or the forward step's outputs."""
    if step == "forward":
        return {prefix + code: prefix + continuous for code, continuous in pair.CODE_OUTPUTS.items()
                for prefix in ("", "train_")}
    return getattr(steps_of(pair)[step], "CODE_KEYS", None)


def tolerance_overrides(step, pair):
    """{dtype: {step: [(pattern, Tolerance)]}}: the pair's tolerances of `step`, then its module's own."""
    own = getattr(steps_of(pair)[step], "TOLERANCES", {})
    pairs = pair.TOLERANCES
    return {dtype: {step: [*pairs.get(dtype, {}).get(step, []), *own.get(dtype, [])]}
            for dtype in {*own, *pairs}}


def check_values(step, dtype, torch_values, paddle_values, pair, port_kept=None):
    """The checker's verdict (alignment.check.StepResult) on one step's values of the two sides of `pair`
    (the Paddle side's as alignment.check.check_step takes them, with `port_kept`)."""
    invariants = (*getattr(steps_of(pair)[step], "INVARIANTS", ()), *pair.INVARIANTS.get(step, ()))
    return check_step(step, dtype, torch_values, paddle_values, code_keys(step, pair), invariants,
                      tolerance_overrides(step, pair), port_kept)


@dataclasses.dataclass(frozen=True)
class StepContext:
    bit: int
    dtype: str
    weights: str  # this side's weights file
    images: np.ndarray  # normalized batch, NCHW, float64 (each side casts to dtype)
    labels: np.ndarray  # int64 class ids
    mask_seed: int  # seed of the injected dropout masks
    data: str = None  # CIFAR-10 folder or archive; None: the built-in data
    split_file: str = None  # the split both sides' loaders read
    image_size: int = None  # the case's size: the batch's, or the loaders' of the data and bulk steps
    learning_rate: float = None  # the train step's base rate for these weights (alignment.weight_sets)
    threads: int = 1
    pair: object = dataclasses.field(kw_only=True)  # the model pair (alignment.pairs.base.ModelPair)

    def batch(self):
        return self.images.astype(self.dtype)
