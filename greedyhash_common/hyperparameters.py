"""The reference values of GreedyHash on CIFAR-10 (I), defined once and imported by both sides.

Sources: the official code (ssppp/GreedyHash, cifar1.py) and the Paddle reproduction
(hatimwen/paddle_greedyhash); where the references differ: docs/training.md, "Where the references
differ".
"""
BITS = (12, 24, 32, 48)
NUM_CLASSES = 10

QUANTIZATION_WEIGHT = 0.1  # alpha in: cross_entropy + alpha * mean(| |h| - 1 |^3)
QUANTIZATION_POWER = 3

LEARNING_RATE = 1e-3
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4  # coupled L2, as torch SGD and Paddle Momentum(weight_decay=float) apply it
LR_DECAY_EVERY_EPOCHS = 30
LR_DECAY_FACTOR = 0.1
EPOCHS = 50
BATCH_SIZE = 32
SEED = 2000

DROPOUT_P = 0.5
FEATURE_DIM = 4096  # width of AlexNet's penultimate layer, the hash layer's input

IMAGE_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def learning_rate_at(epoch, base_lr=LEARNING_RATE):
    """The step schedule of the references: lr = base * 0.1 ** (epoch // 30)."""
    return base_lr * LR_DECAY_FACTOR ** (epoch // LR_DECAY_EVERY_EPOCHS)
