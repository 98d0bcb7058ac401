"""Where the loss and loop operators install in a pair's Paddle side: what is the pair's own.

A pair's `mutant_seams()` (alignment.pairs.base) returns one of these. The default is any pair whose loss
is one value (`side.loss(logits, labels)`, the base's cross-entropy) and whose train step is the suite's
own iterations (no product loop to mutate); GreedyHash's (alignment/pairs/greedyhash/mutant_seams.py) has
two loss terms, a loss its training step also imports, and its product's training loop.
"""
import contextlib

from ..sides import patched


class Seams:
    LOSS_TERMS = ("loss",)  # the places of the loss operators
    LOOPS = ()  # the places of the loop operators: the side's functions that run the product's training loop

    def reweighted_loss(self, loss, term, factor):
        """`loss` with `term`'s weight multiplied by `factor` in the total (one term: the loss itself)."""
        return lambda *args, **kwargs: loss(*args, **kwargs) * factor

    def installed_loss(self, side, loss):
        return patched([(side, "loss", loss)])

    def installed_loop(self, side, place, mutate):
        if place not in self.LOOPS:
            return contextlib.nullcontext()
        return patched([(side, place, mutate(getattr(side, place)))])
