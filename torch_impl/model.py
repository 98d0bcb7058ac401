"""GreedyHash on torchvision's AlexNet, as the official code builds it.

Attribute names follow the official cifar1.py (`alex`, `fc_plus`, `fc`), so checkpoints of the
official code load unchanged, and `alex` is a real torchvision AlexNet, so torchvision's ImageNet
checkpoint loads into it.
"""
import torch
import torchvision
from torch import nn

from greedyhash_common.hyperparameters import FEATURE_DIM, NUM_CLASSES

NUM_KEPT_CLASSIFIER_LAYERS = 6  # classifier[:6]: the 1000-class ImageNet layer is dropped


class SignStraightThrough(torch.autograd.Function):
    """b = sign(h) forward; the gradient passes unchanged backward (GreedyHash's key idea)."""

    @staticmethod
    def forward(ctx, h):
        return torch.sign(h)

    @staticmethod
    def backward(ctx, grad_b):
        return grad_b


class GreedyHash(nn.Module):
    def __init__(self, bit, num_classes=NUM_CLASSES):
        super().__init__()
        self.alex = torchvision.models.alexnet(weights=None)
        self.alex.classifier = self.alex.classifier[:NUM_KEPT_CLASSIFIER_LAYERS]
        self.fc_plus = nn.Linear(FEATURE_DIM, bit)
        self.fc = nn.Linear(bit, num_classes, bias=False)

    def forward(self, x):
        """Return (logits, h, b): class scores, the continuous hash layer output, the sign codes."""
        features = self.alex.features(x)
        features = self.alex.avgpool(features)
        h = self.fc_plus(self.alex.classifier(torch.flatten(features, 1)))
        b = SignStraightThrough.apply(h)
        return self.fc(b), h, b
