"""Run one alignment step on both frameworks in this process and check it, as the suite does in two.

The step code, the sides and the checker are the suite's own; only the processes differ.
"""
import numpy as np

from alignment.pairs.greedyhash import GREEDYHASH, paddle_side, torch_side
from alignment.steps import StepContext, check_values, step_module
from greedyhash_common.hyperparameters import LEARNING_RATE

from .conftest import BIT


def step_context(weights_file, dtype, images=None, labels=None, size=64, data=None, split_file=None,
                 learning_rate=LEARNING_RATE):
    """A StepContext; without images, a placeholder batch (the steps that read loaders ignore it)."""
    if images is None:
        images, labels = np.zeros((1, 3, size, size)), np.zeros(1, np.int64)
    return StepContext(BIT, dtype, weights_file, images, labels, 0, data, split_file, size, learning_rate,
                       pair=GREEDYHASH)


def torch_values(step, weights, dtype="float64", **options):
    return step_module(step, GREEDYHASH).run(torch_side, step_context(weights[0], dtype, **options))


def check_both(step, weights, dtype="float64", paddle=paddle_side, reference=None, **options):
    """The StepResult of `step` with the Paddle side `paddle` (a planted defect) against torch's values
    (`reference` when already computed)."""
    reference = reference if reference is not None else torch_values(step, weights, dtype, **options)
    port = step_module(step, GREEDYHASH).run(paddle, step_context(weights[1], dtype, **options))
    return check_values(step, dtype, reference, port, GREEDYHASH)


def failing(result):
    """{key: note} of every key that failed."""
    return {key.name: key.note for key in result.keys if not key.passed}


def mutated(function, old, new):
    """`function` rebuilt from its source with `old` replaced by `new` once, in its own module's globals:
    a one-line defect planted in the product's code, as a porter would make it."""
    import inspect
    import textwrap

    source = textwrap.dedent(inspect.getsource(function))
    assert source.count(old) == 1, f"{old!r} is not in {function.__name__} exactly once"
    namespace = {}
    exec(compile(source.replace(old, new), inspect.getsourcefile(function), "exec"), function.__globals__, namespace)
    return namespace[function.__name__]
