"""The alignment suite's tolerances, defined here once (a pair's own are beside its adapter).

A key passes when max |paddle - torch| <= atol + rtol * max |torch|: the relative part is taken
against the tensor's own scale, not element by element, so values that are tiny next to the rest of
their tensor (most entries of a gradient) do not need an arbitrary floor.

float64: both frameworks compute the same operations in the same order up to summation order, so
agreement is near-exact (measured: docs/tolerances.md, float64); 1e-10 leaves room for summation order
and nothing else: any semantic difference is far above it.
float32: about 10x the worst difference measured for a correct port over six runs, per step (the
measurements: docs/tolerances.md, float32). A pair may hold some keys looser (its adapter's TOLERANCES):
GreedyHash's gradients below the first max-pool (the input's and conv1's; its tolerances.py), where two
activations within float32 rounding of each other in a pooling window swap order, and the gradient goes
to the neighbour. A ReLU input within rounding of zero does the same
to a whole row; float64 then still agrees near-exactly, which is what separates rounding from a defect.
"""
import dataclasses
import fnmatch

from greedyhash_common.infra.errors import UserInputError


@dataclasses.dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float

    def limit(self, scale):
        return self.atol + self.rtol * scale


NEAR_EXACT = Tolerance(atol=0.0, rtol=1e-10)
# Momentum buffers are sums of gradients, and a float32 max-pool or ReLU decision flip moves a
# gradient by a large part of its value (backward step above); over 20 iterations one flip is diluted
# (measured: docs/tolerances.md, Training). float64 holds them to 1e-10.
MOMENTUM_FLOAT32 = Tolerance(atol=0.0, rtol=1e-1)

# The suite's steps: dtype -> step -> [(key pattern, tolerance)], first match wins; step "*" for every
# other step. A pair's own step brings its own (TOLERANCES in its module, read before this table).
_TABLE = {
    "float64": {
        "*": [("*", NEAR_EXACT)],
    },
    "float32": {
        "forward": [("*", Tolerance(atol=0.0, rtol=2e-5))],
        # the loss step runs its own forward: the forward's rounding, carried through the cubic
        # quantization term (measured: docs/tolerances.md, float32)
        "loss": [("*", Tolerance(atol=0.0, rtol=2e-5))],
        # a pair's own overrides come first (GreedyHash's below its first max-pool:
        # alignment/pairs/greedyhash/tolerances.py)
        "backward": [("*", Tolerance(atol=0.0, rtol=5e-5))],
        "optim": [("*", Tolerance(atol=0.0, rtol=1e-6))],
        "train": [("lr", NEAR_EXACT), ("loss_*", Tolerance(atol=0.0, rtol=1e-6)),
                  # a decision flip's gradient, 20 updates on (measured: docs/tolerances.md, Training);
                  # keys may be prefixed by the update after which they were taken ("iteration0.param.*")
                  ("*param.*", Tolerance(atol=0.0, rtol=1e-4)),
                  ("*momentum.*", MOMENTUM_FLOAT32),
                  ("*buffer.*", Tolerance(atol=0.0, rtol=1e-4))],
    },
}


def tolerance(step, dtype, key, overrides=None):
    """The tolerance of `key`: `overrides` ({dtype: {step: [(pattern, Tolerance)]}}: the pair's, then the
    step module's own) first."""
    own = (overrides or {}).get(dtype, {}).get(step, [])
    steps = _TABLE[dtype]
    for pattern, value in [*own, *steps.get(step, steps.get("*", []))]:
        if fnmatch.fnmatchcase(key, pattern):
            return value
    raise UserInputError(f"no {dtype} tolerance for {step}/{key}: give the step's module TOLERANCES")
