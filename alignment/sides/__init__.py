"""What the alignment steps need from a framework, one mirrored module per framework.

A step is written once (`alignment.steps`) against this small interface, so both sides are certain
to do the same thing; only tensor handling differs between torch_side.py and paddle_side.py.
"""
