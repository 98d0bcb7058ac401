"""ResNet-50 (10 classes): torchvision.models.resnet50 against paddle.vision.models.resnet50. Every
definition but the architecture is resnet18's (alignment/pairs/resnet18.py), the libraries' BatchNorm
difference included; the pair measures how the suite's cost grows with the model
(docs/adding-a-model-pair.md, Cost)."""
from .base import BATCH_NORM_DRAWS
from .resnet18 import ResNet18


class ResNet50(ResNet18):
    NAME = ARCHITECTURE = "resnet50"
    # Narrower than resnet18's: over 16 blocks, scales up to 2 grow the eval-mode logits past Paddle's
    # cross-entropy cap (docs/adding-a-model-pair.md)
    BATCH_NORM_DRAWS = BATCH_NORM_DRAWS
