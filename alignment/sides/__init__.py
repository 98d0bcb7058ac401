"""What the alignment steps need from a framework, one mirrored module per framework.

A step is written once (`alignment.steps`) against this small interface, so both sides are certain
to do the same thing; only tensor handling differs between torch_side.py and paddle_side.py.
"""
import contextlib
import copy
import importlib

from greedyhash_common.infra.runtime_settings import quiet_paddle_import

REFERENCE, PORT = "torch", "paddle"


def configured_side(framework, threads):
    """The side module of `framework`, its runtime configured with `threads` before any computation."""
    quiet_paddle_import()
    side = importlib.import_module(f"alignment.sides.{framework}_side")
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
    """side.build_model making each model once: the first build of a precision initializes a model
    (side.new_model) and loads its weights (side.load_into), a build of other weights loads them into a
    copy of a model already built (every parameter is loaded: load_into refuses a partial checkpoint), and
    a later build of the same (bit, precision, weights) is a copy of the first, which no step ever sees.
    (The Paddle side's AlexNet: a build about 1.4 s in float32, a load into a copy 0.5 s, a copy 0.15 s.)
    Only the models of the last precision are kept, so that a side holds one model per weight set."""
    built = {}

    def build_or_copy(bit, dtype, weights):
        if any(key[1] != dtype for key in built):
            built.clear()
        if (bit, dtype, weights) not in built:
            like = next((model for key, model in built.items() if key[:2] == (bit, dtype)), None)
            model = side.new_model(bit, dtype) if like is None else copy.deepcopy(like)
            built[bit, dtype, weights] = side.load_into(model, weights)
        return copy.deepcopy(built[bit, dtype, weights])
    return patched([(side, "build_model", build_or_copy)])
