"""GreedyHash through Paddle's static graph, for training and for encoding.

`to_static(model)` converts the model's forward with paddle.jit.to_static (whole graph): the same
layer object, the same parameters (an optimizer built on `model.parameters()` keeps working), the
forward and its backward run as one compiled program per input shape instead of op by op. The
straight-through sign (a PyLayer) converts with it. The first call per input shape compiles (about
2 s here); benchmarks/ measures what it gives against the dynamic graph.
"""
import paddle


def to_static(model):
    """`model` with its forward compiled to a static program (converted in place, and returned)."""
    return paddle.jit.to_static(model, full_graph=True)
