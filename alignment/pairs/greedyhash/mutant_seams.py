"""GreedyHash's seams of the mutation operators (alignment.mutation.seams): its loss has two terms,
total = 1 * cross_entropy + alpha * quantization, returned as (total, cross_entropy, quantization), and
the training step (paddle_impl/train_step.py) imports it too; its train step drives the product's training
loop (`train_one_epoch`)."""
from greedyhash_common.hyperparameters import QUANTIZATION_WEIGHT
from paddle_impl import train_step

from ...mutation.seams import Seams
from ...sides import patched

LOSS_TERMS = ("cross_entropy", "quantization")


def _term_weights(alpha):
    return {"cross_entropy": 1.0, "quantization": alpha}


class GreedyHashSeams(Seams):
    LOSS_TERMS = LOSS_TERMS
    LOOPS = ("train_one_epoch",)

    def reweighted_loss(self, loss, term, factor):
        """`loss` with `term`'s weight multiplied by `factor` in the total (the terms themselves unchanged)."""
        def mutated(logits, h, labels, alpha=QUANTIZATION_WEIGHT):
            total, *terms = loss(logits, h, labels, alpha)
            changed = terms[LOSS_TERMS.index(term)]
            return (total + (factor - 1.0) * _term_weights(alpha)[term] * changed, *terms)
        return mutated

    def installed_loss(self, side, loss):
        return patched([(side, "loss", loss), (train_step, "greedyhash_loss", loss)])
