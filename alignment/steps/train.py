"""train: training side by side from the same weights, on the same batches, with the pair's randomness
made the same on both sides, through a learning-rate decay; the pair says how (`train_values`):
GreedyHash runs its product's own training loop (alignment.pairs.greedyhash), a pair without one the
iterations of `iterations_values` below.

Logged: the losses and the learning rate of every iteration, the parameters and momentum buffers (by
torch name, in torch's layout) and the buffers a training pass updates (BatchNorm's running
statistics).
"""
import numpy as np

from ..cases import BULK, WEIGHTS
from .forward import named_outputs
from .optimizer_coefficients import float32_exact_coefficients

USES = (WEIGHTS, BULK)
ITERATIONS = 3
BATCH_SIZE = 4
DECAY_EVERY = 2  # iterations, so the run crosses a decay


def float64_only_weight_sets(pair):
    """The weight sets at which only float64 separates a defect from rounding in this step."""
    return pair.FLOAT64_ONLY_TRAIN_WEIGHT_SETS


def training_state(side, model, optimizer, prefix="", buffers=True, last=False):
    """{prefix + "param." / "momentum." / "buffer." + name: array} of a model in training, its running
    statistics left out with `buffers` False. Copies, but for the `last` read of a step: an array may share
    memory with a tensor (both sides' readouts do) that the next update changes in place; after the last
    one the arrays keep the tensors' memory instead (a float64 AlexNet's parameters and momentum: 0.9 GB
    not held twice at the step's peak)."""
    values = {f"{prefix}param.{name}": value for name, value in side.parameter_values(model).items()}
    values.update({f"{prefix}momentum.{name}": value for name, value in side.momentum_buffers(model, optimizer).items()})
    if buffers:
        values.update({f"{prefix}buffer.{name}": value for name, value in side.buffer_values(model).items()})
    return {key: np.asarray(value) if last else np.array(value, copy=True) for key, value in values.items()}


def iterations_values(side, context):
    """ITERATIONS optimizer updates in training mode on the case's batch (the first BATCH_SIZE images),
    the rate decaying every DECAY_EVERY updates; every parameter, momentum buffer and running statistic
    after every update, the losses and the rate of every update."""
    pair = context.pair
    model = side.build_model(context.bit, context.dtype, context.weights)
    pair.inject_randomness(side, model, context.mask_seed)
    model.train()
    optimizer, scheduler = side.optimizer_builder(model, lr=context.learning_rate or pair.OPTIMIZER["lr"],
                                                  decay_every=DECAY_EVERY,
                                                  **float32_exact_coefficients(pair.OPTIMIZER))
    images, labels = side.tensor(context.batch()[:BATCH_SIZE]), side.tensor(context.labels[:BATCH_SIZE])
    records, values = {}, {}
    for iteration in range(ITERATIONS):
        records.setdefault("lr", []).append(side.learning_rate(optimizer, scheduler))
        terms = pair.loss_terms(side, named_outputs(pair, model(images)), labels)
        for key, term in terms.items():
            records.setdefault(key, []).append(float(side.numpy(term)))
        side.backward(terms["loss_total"])
        side.optimizer_step(optimizer)
        scheduler.step()
        values.update(training_state(side, model, optimizer, f"iteration{iteration}.", last=iteration == ITERATIONS - 1))
    values.update({key: np.array(series, dtype=np.float64) for key, series in records.items()})
    return values


def run(side, context):
    return context.pair.train_values(side, context)
