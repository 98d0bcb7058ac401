"""GreedyHash's weight sets (weight_makers.py makes them):

- `seeded`: torch's own seeded initialization. Its activations shrink layer by layer (the ranges on the
  suite's batch: docs/alignment.md, Weight sets and sizes), so a port defect that only changes larger
  values (ReLU6 for ReLU, a clamp, the quantization term where |h| > 1) passes there.
- `rescaled`: the seeded weights with each Conv and Linear layer's weight and bias multiplied by one
  factor, chosen on the suite's batch, in forward order, so that the layer's pre-activations have the
  standard deviation of `TARGET_STD`: the value ranges of a trained network (classifier activations of
  order ten, |h| beyond 1 as well as near 0). Scaling a layer's weight and bias together keeps every
  ReLU's on/off pattern at that layer and changes only magnitudes, so each layer still computes a
  seeded-random function, now over a trained network's ranges.
- `user`: the checkpoint given with --weights.

See docs/alignment.md, "Weight sets and sizes: what a pass covers" (the ranges each set reaches, and
how to measure them).
"""
from greedyhash_common.hyperparameters import LEARNING_RATE

from ...weight_sets import RESCALED

# Standard deviation of each layer's pre-activations in the rescaled set, by the layer's kind.
# Convolutions and the classifier's Linear layers: 4 puts the largest ReLU inputs of a batch well above
# ReLU6's clamp, at the order of ten where a trained AlexNet's are (docs/alignment.md, "Weight sets and
# sizes": the ranges measured); the hash layer: 1.5 puts |h| on both sides of 1 (the quantization term's
# breakpoint); the class scores: 3, a softmax that is neither uniform nor one-hot.
TARGET_STD = {"features": 4.0, "classifier": 4.0, "hash": 1.5, "scores": 3.0}
# The rescaling is chosen on the suite's batch at the reference's input size, whatever the run's sizes.
RESCALING_IMAGE_SIZE = 224

# The train step's base learning rate per set. The rescaling multiplies the gradient reaching a layer by
# the factors of every layer after it (about 400 at conv1), so the reference's 1e-3 sends the rescaled
# network to Inf within a few updates (docs/alignment.md, "Weight sets and sizes"); 1e-6 keeps 20 updates
# finite while the loss still moves by a large part of its value (tests/test_alignment_training.py checks
# both).
RESCALED_LEARNING_RATE = 1e-6


def train_learning_rate(weight_set):
    return RESCALED_LEARNING_RATE if weight_set == RESCALED else LEARNING_RATE


def target_std(name):
    """The pre-activation standard deviation of layer `name` in the rescaled set."""
    if name.startswith("alex.features."):
        return TARGET_STD["features"]
    if name.startswith("alex.classifier."):
        return TARGET_STD["classifier"]
    return TARGET_STD["hash"] if name == "fc_plus" else TARGET_STD["scores"]
