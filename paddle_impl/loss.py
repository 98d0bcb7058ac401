"""GreedyHash's objective: cross-entropy on the codes' class scores plus the quantization penalty."""
import paddle.nn.functional as F

from greedyhash_common.hyperparameters import QUANTIZATION_POWER, QUANTIZATION_WEIGHT


def greedyhash_loss(logits, h, labels, alpha=QUANTIZATION_WEIGHT):
    """Return (total, cross_entropy, quantization), quantization = mean(| |h| - 1 |^3) unweighted."""
    cross_entropy = F.cross_entropy(logits, labels)
    quantization = (h.abs() - 1).abs().pow(QUANTIZATION_POWER).mean()
    return cross_entropy + alpha * quantization, cross_entropy, quantization
