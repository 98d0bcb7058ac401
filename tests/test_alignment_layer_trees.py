"""Layer localization on model pairs whose module trees differ: torchvision's and paddle.vision's
MobileNetV2 and SqueezeNet 1.1 and the defects planted in them (benchmarks/layer_tree_cases.py), float64,
both sides in this process.

Each planted Paddle defect must be the headline ("first divergence") of the traces it shows in, named
with its operator and the Paddle model code line that made it; the unmodified pairs' library
differences must be named at the layers where they start. Slow tier: MobileNetV2's torch record takes
about 5 s and each Paddle record about 7 s at 64 px on one thread, SqueezeNet's about 2 s each (on a
quiet 2-core machine; a few times that under load), so the file adds about a minute to `make test`.
"""
import paddle
import pytest

from alignment.layers.localize import compare_records
from alignment.layers.worker import calls_in_run_order, record_side
from alignment.sides import paddle_layers, torch_layers
from alignment.steps import StepContext
from benchmarks import layer_tree_cases
from benchmarks.layer_tree_cases import (MOBILENET_V2, SQUEEZENET, batch, batch_norm_momentum, ceil_mode_off,
                                         padded_pointwise_convolution, relu_for_relu6, squeezenet_as_torchvision)

PLANTS_FILE = "benchmarks/layer_tree_cases.py"
# SqueezeNet's stem makes a 32x32 map of a 65 px image: its first max-pool's last window is cut by the
# border, where ceil_mode decides (at 64 px every window fits and ceil_mode changes nothing)
SQUEEZENET_SIZE = 65


def context(pair, size):
    images, labels = batch(size)
    return StepContext(12, "float64", None, images, labels, 0, pair=getattr(layer_tree_cases, pair))


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """As the suite's sides run (alignment.sides: --threads 1); two threads on a shared 2-core machine
    made torch's float64 depthwise convolutions ten times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mobilenet():
    ctx = context("MOBILENET_V2", 64)
    return ctx, record_side(MOBILENET_V2.torch_side(), torch_layers, ctx, {})


@pytest.fixture(scope="module")
def squeezenet():
    ctx = context("SQUEEZENET", SQUEEZENET_SIZE)
    return ctx, record_side(SQUEEZENET.torch_side(), torch_layers, ctx, {})


def localize(pair, recorded, plant=None):
    ctx, (reference, reference_alone) = recorded
    port, alone = record_side(pair.paddle_side(plant), paddle_layers, ctx, {}, reference)
    return compare_records("float64", reference, port, alone, pair=pair, reference_isolated=reference_alone)


def headline(localization, mode, direction):
    row, place = localization.trace(mode, direction).divergence()
    return row, place


@pytest.mark.slow
def test_the_trees_pair_whole_and_the_library_differences_start_at_batch_norm(mobilenet):
    localization = localize(MOBILENET_V2, mobilenet)
    assert localization.unpaired == []  # paddle's AdaptiveAvgPool2D layer with torch's functional pool, flatten too
    assert localization.trace("eval", "forward").passed
    # Paddle's BatchNorm epsilon enters as float32(1e-5) even in float64: training mode, batch statistics
    for direction in ("forward", "backward"):
        row, _ = headline(localization, "train", direction)
        assert row.types == "BatchNorm2d" and row.operator == "", (direction, row)
    # running variance (unbiased in torch, biased in Paddle), the momentum kept in float32 by Paddle
    row, place = headline(localization, "train", "buffers")
    assert row.types == "BatchNorm2d" and place == "at"
    rows = [row.layer for row in localization.trace("eval", "forward").rows]
    assert "features.3.<__add__>" in rows and "<flatten>" in rows and "features.18.2" in rows


@pytest.mark.slow
def test_relu6_replaced_by_relu_is_the_headline_in_both_modes_with_operator_and_line(mobilenet):
    localization = localize(MOBILENET_V2, mobilenet, relu_for_relu6)
    for mode in ("eval", "train"):
        for direction in ("forward", "backward"):
            row, _ = headline(localization, mode, direction)
            assert (row.layer, row.types, row.operator) == ("features.3.conv.1.2", "ReLU6 / ReLU", "relu6 vs relu"), \
                (mode, direction, row.layer)
            assert row.source.startswith(PLANTS_FILE + ":")
    assert headline(localization, "eval", "forward")[1] == "at"
    assert localization.trace("eval", "forward").isolated_failures() == ["features.3.conv.1.2"]


@pytest.mark.slow
def test_wrong_padding_is_named_with_its_setting(mobilenet):
    localization = localize(MOBILENET_V2, mobilenet, padded_pointwise_convolution)
    for mode in ("eval", "train"):
        row, place = headline(localization, mode, "forward")
        assert (row.layer, place, row.operator) == ("features.1.conv.1", "at", "padding [0, 0] vs 1"), mode
        assert "shape differs" in row.computes.note and row.source.startswith(PLANTS_FILE + ":")


@pytest.mark.slow
def test_batch_norm_momentum_shows_in_the_buffers_only(mobilenet):
    localization = localize(MOBILENET_V2, mobilenet, batch_norm_momentum)
    assert localization.trace("eval", "forward").passed
    row, place = headline(localization, "train", "buffers")
    assert (row.layer, place) == ("features.5.conv.1.1", "at")
    assert row.operator == "momentum 0.1 vs 0.5"


@pytest.mark.slow
def test_squeezenet_pairs_across_its_different_nesting_and_its_library_differences_are_named(squeezenet):
    localization = localize(SQUEEZENET, squeezenet)
    assert localization.unpaired == []  # Paddle's F.relu calls with torch's ReLU modules, squeeze with flatten
    row, place = headline(localization, "eval", "forward")
    assert (row.layer, place, row.operator) == ("features.0", "at", "padding [0, 0] vs 1")
    differing = localization.trace("eval", "forward").isolated_failures()
    # padding; ceil_mode at each of the three calls of Paddle's one pool; dropout in downscale_in_infer mode
    assert differing == ["features.0", "features.2", "features.5", "features.8", "classifier.0"]
    rows = {row.layer: row for row in localization.trace("eval", "forward").rows}
    assert {rows[pool].operator for pool in ("features.2", "features.5", "features.8")} == {"ceil_mode True vs False"}


@pytest.mark.slow
def test_squeezenet_corrected_agrees_and_a_ceil_mode_change_is_named(squeezenet):
    corrected = localize(SQUEEZENET, squeezenet, squeezenet_as_torchvision)
    assert corrected.trace("eval", "forward").passed and corrected.trace("train", "forward").passed
    localization = localize(SQUEEZENET, squeezenet, ceil_mode_off)
    for mode in ("eval", "train"):
        row, place = headline(localization, mode, "forward")
        assert (row.layer, place, row.operator) == ("features.2", "at", "ceil_mode True vs False"), mode
        assert row.source.startswith("paddle/vision/models/squeezenet.py:")  # where the pool is made


def test_watched_functions_are_restored_even_when_the_recorded_pass_fails():
    import torch

    class FailingModel(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)

        def forward(self, x):
            torch.flatten((self.fc(x) + x).view(2, 4), 1)
            raise ValueError("the model's own failure")

    watched = (torch.flatten, torch.nn.functional.relu, paddle.flatten, paddle.Tensor.__add__)
    model = FailingModel()
    with pytest.raises(ValueError), calls_in_run_order(torch_layers, model, lambda tensor: tensor, functions=True) as calls:
        model(torch.ones(2, 4, requires_grad=True))
    assert [call.name for call in calls if call.unit == "function"] == ["<__add__>", "<view>", "<flatten>"]
    assert (torch.flatten, torch.nn.functional.relu, paddle.flatten, paddle.Tensor.__add__) == watched
    assert "__add__" not in vars(torch.Tensor) and "view" not in vars(torch.Tensor)
