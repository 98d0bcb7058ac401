"""The alignment steps, one module each, written once for both frameworks.

Every step module has `run(side, context) -> {key: numpy array}`, where `side` is
`alignment.sides.torch_side` or `alignment.sides.paddle_side`. A step may also declare
`CODE_KEYS` (sign codes compared exactly, mapped to the continuous values that excuse a flip near
zero) and `INVARIANTS` (pairs of keys that must be equal inside each side's own file).
"""
import dataclasses

import numpy as np

from . import backward, forward, loss

STEPS = {"forward": forward, "loss": loss, "backward": backward}


@dataclasses.dataclass(frozen=True)
class StepContext:
    bit: int
    dtype: str
    weights: str  # this side's weights file
    images: np.ndarray  # normalized batch, NCHW, float64 (each side casts to dtype)
    labels: np.ndarray  # int64 class ids
    mask_seed: int  # seed of the injected dropout masks

    def batch(self):
        return self.images.astype(self.dtype)
