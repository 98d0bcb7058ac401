"""The alignment steps, one module each, written once for both frameworks.

Every step module has `run(side, context) -> {key: numpy array}`, where `side` is
`alignment.sides.torch_side` or `alignment.sides.paddle_side`. A step may also declare
`CODE_KEYS` (sign codes compared exactly, mapped to the continuous values that excuse a flip near
zero), `INVARIANTS` (pairs of keys that must be equal inside each side's own file) and `DTYPES`
(the precisions it means something in; default: all).
"""
import dataclasses

import numpy as np

from greedyhash_common.hyperparameters import IMAGE_SIZE

from . import backward, data, forward, loss, metric, optim, train

STEPS = {"data": data, "forward": forward, "loss": loss, "backward": backward, "optim": optim, "train": train,
         "metric": metric}
# The metric step encodes every query and database image and the train step runs 20 iterations:
# at 224 px each takes minutes on a 2-core CPU, so they run at 64 px unless asked otherwise.
BULK_IMAGE_SIZE = 64


def runs_in(step, dtype):
    return dtype in getattr(STEPS[step], "DTYPES", (dtype,))


@dataclasses.dataclass(frozen=True)
class StepContext:
    bit: int
    dtype: str
    weights: str  # this side's weights file
    images: np.ndarray  # normalized batch, NCHW, float64 (each side casts to dtype)
    labels: np.ndarray  # int64 class ids
    mask_seed: int  # seed of the injected dropout masks
    data: str = None  # CIFAR-10 folder or archive; None: the built-in data
    split_file: str = None  # the split both sides' loaders read
    image_size: int = IMAGE_SIZE
    bulk_image_size: int = BULK_IMAGE_SIZE

    def batch(self):
        return self.images.astype(self.dtype)
