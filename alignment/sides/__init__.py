"""What the alignment steps need from a framework: a pair's side, one per framework.

A step is written once (`alignment.steps`) against this small interface, so both sides are certain
to do the same thing. A pair's adapter (alignment.pairs) gives its sides: GreedyHash's are its own
(alignment/pairs/greedyhash/torch_side.py, paddle_side.py); a pair defined by its adapter alone gets
generic_side.py's. What every side does with tensors is torch_tensors.py and paddle_tensors.py, and
with layers (layer localization) torch_layers.py and paddle_layers.py, mirrored.
"""
import contextlib
import copy

from greedyhash_common.infra.runtime_settings import quiet_paddle_import

REFERENCE, PORT = "torch", "paddle"


def configured_side(framework, threads, pair):
    """The side of `framework` of a model pair (alignment.pairs.base.ModelPair), its runtime configured with
    `threads` before any computation."""
    quiet_paddle_import()
    side = pair.side(framework)
    side.configure(threads)
    return side


@contextlib.contextmanager
def patched(targets):
    """Set each (owner, attribute, value) of `targets` for the duration, then restore the originals."""
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in targets]
    for owner, name, value in targets:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in originals:
            setattr(owner, name, value)


def reusing_builds(side):
    """side.build_model building once per (bit, precision, weights) while the precision and bit stay the
    same: the later builds are copies of the first, which no step ever sees (a copy takes a fraction of a
    build: docs/alignment.md, Running it). The steps of a run go through the weight sets in turn, step
    after step, so each set's build is kept until the precision changes: a side holds one model per weight
    set more than its steps do, and builds each once per precision instead of once per step. Every build
    goes through the side's build_model as it is when this starts, with whatever a user or a test
    installed in it."""
    build, kept = side.build_model, {}

    def build_or_copy(bit, dtype, weights):
        if (bit, dtype, weights) not in kept:
            if any(key[:2] != (bit, dtype) for key in kept):
                kept.clear()  # another precision: these are not built again
            kept[bit, dtype, weights] = build(bit, dtype, weights)
        return copy.deepcopy(kept[bit, dtype, weights])
    return patched([(side, "build_model", build_or_copy)])
