"""optim: the learning rate of a whole schedule, and the parameters and momentum after a few updates
from identical weights and identical gradients.

The schedule is stepped once per epoch for the pair's epochs (GreedyHash's reference: 50), and each side's
rates must also equal the pair's formula (inside each side: two ports wrong the same way would agree with each
other). The updates use a schedule that decays after every update, so a scheduler that the optimizer
does not follow shows in the parameters.
"""
import warnings

import numpy as np

from ..cases import WEIGHTS
from ..weight_sets import SEEDED
from .optimizer_coefficients import float32_exact_coefficients
from .train import training_state

USES = (WEIGHTS,)
WEIGHT_SETS = (SEEDED,)  # the gradients are drawn, and the weights enter the update only linearly

INVARIANTS = (("lr_per_epoch", "lr_reference"),)
UPDATES = 2  # enough to see the momentum carried over and one decay of the rate
GRADIENT_SCALE = 1e-2


def _gradient(seed, update, name, shape, dtype):
    """A gradient both sides can draw: a pure function of (seed, update, parameter name)."""
    key = [seed, update, *name.encode()]
    gradient = np.random.default_rng(key).standard_normal(shape, dtype=np.dtype(dtype))
    gradient *= GRADIENT_SCALE
    return gradient


def _apply_gradients(side, model, optimizer, seed, update, dtype):
    """Backward of the dot product of p and g leaves exactly g (1 * g) in p.grad, in both frameworks, with public
    APIs only; unlike sum(p * g), the forward makes no product array of every parameter's size."""
    surrogate = None
    for name, parameter in side.named_parameters(model):
        shape = side.torch_layout(name, np.empty(tuple(parameter.shape))).shape
        gradient = side.torch_layout(name, _gradient(seed, update, name, shape, dtype))
        term = parameter.flatten().dot(side.tensor(gradient).flatten())
        surrogate = term if surrogate is None else surrogate + term
    side.backward(surrogate)
    side.optimizer_step(optimizer)


def run(side, context):
    pair = context.pair
    model = side.build_model(context.bit, context.dtype, context.weights)
    coefficients = {"lr": pair.OPTIMIZER["lr"], **float32_exact_coefficients(pair.OPTIMIZER)}
    optimizer, scheduler = side.optimizer_builder(model, decay_every=pair.OPTIMIZER["decay_every"], **coefficients)
    rates = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns that no optimizer step came first: none is meant to
        for _ in range(pair.EPOCHS):
            rates.append(side.learning_rate(optimizer, scheduler))
            scheduler.step()
    values = {"lr_per_epoch": np.array(rates, dtype=np.float64),
              "lr_reference": np.array([pair.learning_rate_at(epoch) for epoch in range(pair.EPOCHS)])}
    optimizer, scheduler = side.optimizer_builder(model, decay_every=1, **coefficients)
    for update in range(UPDATES):
        _apply_gradients(side, model, optimizer, context.mask_seed, update, context.dtype)
        scheduler.step()
    values.update(training_state(side, model, optimizer, buffers=False, last=True))
    return values
