"""Dropout masks drawn from one numpy generator, so both frameworks can drop the same units.

torch and Paddle cannot share a random generator, so a training-mode comparison injects these masks
into both models (alignment only; real training uses each framework's own dropout). A mask depends
only on (seed, step, layer): the same on both sides, whatever ran before.
"""
import numpy as np


class DropoutMaskSchedule:
    """The masks of one run: `keep_mask(layer, shape)` for the current step; `advance()` per iteration."""

    def __init__(self, seed, p):
        self.seed = seed
        self.p = p
        self.step = 0

    def keep_mask(self, layer, shape):
        rng = np.random.default_rng([self.seed, self.step, layer])
        return rng.random(shape) >= self.p

    def advance(self):
        self.step += 1
