"""The names of the weight sets every pair has (each pair's adapter makes its own, and may add sets of its
own):

- `seeded`: the framework's seeded initialization (with what it leaves constant drawn, where a pair
  says so);
- `rescaled`: the seeded set rescaled to a trained network's value ranges (alignment/pairs/rescaling.py):
  GreedyHash's own, checked by default (alignment/pairs/greedyhash/weight_sets.py); the one the suite
  proposes to any other pair, checked when asked for (`--weight-sets seeded,rescaled`, alignment.pairs.base);
- `user`: the checkpoint given with --weights.

Every set the suite makes is written in float64, its values not float32-representable (`below_float32`):
the float32 checks read their float32 rounding, the float64 checks bits that no float32 holds, so that a
converter or loader that casts to float32 changes what the float64 checks compute.
"""
import numpy as np

SEEDED, RESCALED, USER = "seeded", "rescaled", "user"

# How far below float32's precision a made set's values reach: each float32 value moved by up to this share
# of its float32 spacing. Under a half even of the spacing below a power of two (half the one above), so the
# float32 rounding of every moved value is the value made.
BELOW_FLOAT32_SHARE = 0.2


def below_float32(state, seed):
    """`state` ({key: array}) with every float32 array in float64, moved by a seeded part of its float32
    spacing; other arrays (float64 ones made in float64, integer counters) as they are."""
    generator = np.random.default_rng(seed)
    moved = {}
    for key, value in state.items():
        if value.dtype == np.float32:
            shares = generator.uniform(-BELOW_FLOAT32_SHARE, BELOW_FLOAT32_SHARE, value.shape)
            value = value.astype(np.float64) + np.spacing(np.abs(value)).astype(np.float64) * shares
        moved[key] = value
    return moved
