"""A framework's side of the alignment steps for a pair defined by its adapter alone (alignment.pairs),
made from the adapter's definitions and the framework's tensor functions (torch_tensors.py,
paddle_tensors.py); GreedyHash has its own sides (alignment/pairs/greedyhash/).

The pair gives, per framework: build(framework) (a model with any initialization: every parameter
and buffer is then loaded, strictly), loss(framework), optimizer(framework) -> (builder, current rate);
and layout(state, framework) (the converter's Layout: key map, transposed weights, shapes).
"""
import importlib
import types

from greedyhash_common.state_dicts.layout import check_state
from greedyhash_common.state_dicts.paddle_files import read_paddle_state

WEIGHTS_SUFFIX = {"torch": ".pth", "paddle": ".pdparams"}


def _torch_build_model(pair, dtype, weights):
    import torch

    from torch_impl.torch_files import read_torch_state

    model = pair.build("torch").to(getattr(torch, dtype))  # loaded in the run's precision, as Paddle's
    state = read_torch_state(weights)
    check_state(state, {key: tuple(value.shape) for key, value in model.state_dict().items()}, weights)
    model.load_state_dict({key: torch.from_numpy(array) for key, array in state.items()}, strict=True)
    return model.eval()


def _paddle_build_model(pair, dtype, weights):
    model = pair.build("paddle")
    model.to(dtype=dtype)
    state = read_paddle_state(weights)
    own = model.state_dict()
    check_state(state, {key: tuple(value.shape) for key, value in own.items()}, weights)
    for key, value in own.items():
        value.set_value(state[key].astype(str(value.dtype).split(".")[-1]))
    model.eval()
    return model


# What a step reads of a model by torch name, in torch's layout (the Paddle side through the pair's layout)
BY_TORCH_NAME = ("named_parameters", "torch_layout", "parameter_gradients", "parameter_values", "buffer_values",
                 "momentum_buffers")


def make_side(pair, framework):
    """The side `framework` of `pair`: a namespace with what the steps call (alignment.steps)."""
    tensors = importlib.import_module(f"alignment.sides.{framework}_tensors")
    runtime = importlib.import_module(f"{framework}_impl.runtime")
    injected_dropout = importlib.import_module(f"{framework}_impl.injected_dropout")
    builder, current_rate = pair.optimizer(framework)
    build = _torch_build_model if framework == "torch" else _paddle_build_model
    if framework == "torch":
        by_torch_name = {name: getattr(tensors, name) for name in BY_TORCH_NAME}
    else:
        layout = pair.layout(None, "paddle")
        by_torch_name = tensors.by_torch_name(layout.key_map, layout.transposed)
    return types.SimpleNamespace(
        NAME=framework, WEIGHTS_SUFFIX=WEIGHTS_SUFFIX[framework], configure=runtime.configure,
        describe=runtime.describe, build_model=lambda bit, dtype, weights: build(pair, dtype, weights),
        loss=pair.loss(framework), optimizer_builder=builder, learning_rate=current_rate,
        inject_masks=injected_dropout.inject_dropout_masks,
        **{name: getattr(tensors, name) for name in ("seed_framework", "tensor", "numpy", "gradients", "backward",
                                                     "gradient_of", "cast", "optimizer_step")},
        **by_torch_name)
