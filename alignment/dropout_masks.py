"""Dropout masks drawn from one numpy generator, so both frameworks can drop the same units.

torch and Paddle cannot share a random generator, so a training-mode comparison injects these masks
into both models (alignment only; real training uses each framework's own dropout). A mask depends
only on (seed, step, layer): the same on both sides, whatever ran before.
"""
import numpy as np


class DropoutMaskSchedule:
    """The masks of one run. A second request for a layer in the same step starts the next step: the
    training loop needs no hook to keep both sides' steps in line, and a layer that draws no mask (left in
    eval mode) shifts no other layer's."""

    def __init__(self, seed, p):
        self.seed = seed
        self.p = p
        self.step = 0
        self._drawn = set()

    def keep_mask(self, layer, shape):
        if layer in self._drawn:
            self.step += 1
            self._drawn.clear()
        self._drawn.add(layer)
        rng = np.random.default_rng([self.seed, self.step, layer])
        return rng.random(shape) >= self.p
