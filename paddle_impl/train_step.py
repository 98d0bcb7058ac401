"""One optimization step of GreedyHash on Paddle; the training loop and the alignment suite both use it."""
from greedyhash_common.hyperparameters import QUANTIZATION_WEIGHT

from .loss import greedyhash_loss


def train_step(model, optimizer, images, labels, alpha=QUANTIZATION_WEIGHT, loss_weight=1.0):
    """Forward, loss, backward of `loss_weight` * total (a data-parallel shard's weight: 1 in one process),
    update; returns (total, cross_entropy, quantization) as tensors."""
    logits, h, _ = model(images)
    total, cross_entropy, quantization = greedyhash_loss(logits, h, labels, alpha)
    optimizer.clear_grad()
    (total * loss_weight).backward()
    optimizer.step()
    return total.detach(), cross_entropy.detach(), quantization.detach()
