"""What the alignment steps need from a framework, one mirrored module per framework.

A step is written once (`alignment.steps`) against this small interface, so both sides are certain
to do the same thing; only tensor handling differs between torch_side.py and paddle_side.py.
"""
import importlib

from greedyhash_common.infra.runtime_settings import quiet_paddle_import

REFERENCE, PORT = "torch", "paddle"


def configured_side(framework, threads):
    """The side module of `framework`, its runtime configured with `threads` before any computation."""
    quiet_paddle_import()
    side = importlib.import_module(f"alignment.sides.{framework}_side")
    side.configure(threads)
    return side
