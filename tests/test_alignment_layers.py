"""Layer-by-layer localization: defects planted in the Paddle model, each found at the right layer.

Both sides record in this process (the suite records them in two; the recording and the comparison
are the same code), at 64x64 in float64, where a correct port agrees to about 1e-15.
"""
import argparse
import json
import os
import re
import stat
import sys
import textwrap

import numpy as np
import paddle
import pytest
import torch

from alignment.check import compare_arrays
from alignment.layers import worker
from alignment.layers.localize import (DIRECTIONS, MODES, LayerRow, Record, Trace, alone_values, compare_records,
                                       kept_unit_axes, load_layer_values, localization_as_json, moves_no_value,
                                       pair_layers)
from alignment.cases import Case
from alignment.layers.worker import naming_on, record_side, wait_for_reference
from alignment.pairs.factories import FactoryPair
from alignment.pairs.greedyhash import GREEDYHASH, paddle_side, torch_side
from alignment.sides import paddle_layers, torch_layers
from alignment.steps import StepContext
from alignment.suite import run_layer_sides
from torch_impl.torch_files import write_torch_state
from alignment.tolerances import NEAR_EXACT

from .conftest import run_module, side_process_imports_paddle
from .step_runner import step_context
from .test_alignment_defects import PaddleSideWith, leaky_relu_in_features, untransposed_square_weight


def wrong_padding_in_features_3(model):
    """The 5x5 convolution padded by 3 instead of torchvision's 2 (with the same weights)."""
    right = model.alex.features[3]
    wrong = paddle.nn.Conv2D(64, 192, 5, padding=3)
    wrong.to(dtype=right.weight.dtype)
    wrong.weight.set_value(right.weight)
    wrong.bias.set_value(right.bias)
    model.alex.features._sub_layers["3"] = wrong
    return model


def downscale_in_infer_dropout_at_classifier_3(model):
    model.alex.classifier[3].mode = "downscale_in_infer"
    return model


@pytest.fixture(scope="module")
def contexts(weights, small_batch):
    return tuple(step_context(path, "float64", *small_batch) for path in weights)


@pytest.fixture(scope="module")
def reference(contexts):
    record, _ = record_side(torch_side, torch_layers, contexts[0], env={})
    return record


def localize_port(contexts, reference, plant=None):
    side = PaddleSideWith(plant) if plant else paddle_side
    port, isolated = record_side(side, paddle_layers, contexts[1], {}, reference)
    return compare_records("float64", reference, port, isolated, GREEDYHASH)


def trace_of(localization, mode, direction):
    (found,) = [trace for trace in localization.traces if (trace.mode, trace.direction) == (mode, direction)]
    return found


def first_divergence(trace):
    row, place = trace.divergence()
    return row.layer, place


@pytest.mark.slow
def test_correct_port_agrees_at_every_layer_and_writes_the_same_keys(contexts, reference):
    port, isolated = record_side(paddle_side, paddle_layers, contexts[1], {}, reference)
    localization = compare_records("float64", reference, port, isolated, GREEDYHASH)
    assert localization.passed and not localization.unpaired
    assert set(port.values) == set(reference.values)  # reprod_log compares files key for key
    eval_forward = trace_of(localization, "eval", "forward")
    assert [row.layer for row in eval_forward.rows][:3] == ["alex.features.0", "alex.features.1", "alex.features.2"]
    assert [row.layer for row in eval_forward.rows][-2:] == ["fc_plus", "fc"]
    assert [row.layer for row in trace_of(localization, "eval", "backward").rows][0] == "fc"
    assert max(row.computes.max_rel for trace in localization.traces for row in trace.rows) < 1e-12


@pytest.mark.slow
def test_missed_transpose_is_found_at_classifier_4(contexts, reference):
    localization = localize_port(contexts, reference, untransposed_square_weight)
    for mode in ("eval", "train"):
        forward = trace_of(localization, mode, "forward")
        assert first_divergence(forward) == ("alex.classifier.4", "at")
        assert forward.isolated_failures() == ["alex.classifier.4"]
        assert trace_of(localization, mode, "backward").isolated_failures() == ["alex.classifier.4"]


def test_leaky_relu_is_found_at_features_4_and_named(contexts, reference):
    localization = localize_port(contexts, reference, leaky_relu_in_features)
    forward = trace_of(localization, "eval", "forward")
    assert first_divergence(forward) == ("alex.features.4", "at")
    assert forward.divergence()[0].types == "ReLU / LeakyReLU"
    assert forward.isolated_failures() == ["alex.features.4"]


def test_wrong_padding_is_found_at_features_3(contexts, reference):
    localization = localize_port(contexts, reference, wrong_padding_in_features_3)
    forward = trace_of(localization, "eval", "forward")
    assert first_divergence(forward) == ("alex.features.3", "at")
    assert "shape differs" in forward.divergence()[0].computes.note
    assert forward.isolated_failures() == ["alex.features.3"]


def test_wrong_dropout_mode_is_found_at_classifier_3_in_training_mode(contexts, reference):
    localization = localize_port(contexts, reference, downscale_in_infer_dropout_at_classifier_3)
    forward = trace_of(localization, "train", "forward")
    assert first_divergence(forward) == ("alex.classifier.3", "at")
    assert forward.divergence()[0].types == "InjectedMaskDropout"
    assert forward.isolated_failures() == ["alex.classifier.3"]


class TorchShortcut(torch.nn.Module):
    """The stem's output h is read twice, by the ReLU and by the `+` of the shortcut."""

    def __init__(self):
        super().__init__()
        self.stem, self.relu, self.conv = torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3, padding=1)
        self.head = torch.nn.Linear(4 * 8 * 8, 10)

    def forward(self, images):
        h = self.stem(images)
        return self.head(torch.flatten(self.conv(self.relu(h)) + h, 1))


class PaddleShortcut(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.stem, self.relu, self.conv = paddle.nn.Conv2D(3, 4, 3, padding=1), paddle.nn.ReLU(), paddle.nn.Conv2D(4, 4, 3, padding=1)
        self.head = paddle.nn.Linear(4 * 8 * 8, 10)

    def forward(self, images):
        h = self.stem(images)
        return self.head(paddle.flatten(self.conv(self.relu(h)) + h, 1))


def test_torch_units_run_alone_keep_only_the_values_their_chained_run_did_not_record(tmp_path, monkeypatch):
    """Run alone, a unit that reads a tensor another unit also reads gets its own share of that tensor's
    gradient, not the sum the chained run recorded: those are kept. Every other value a torch unit computes
    alone is its chained value bit for bit and is not written again; localization reads it there
    (alone_values), the values a record of every unit run alone holds."""
    torch.manual_seed(0)
    pair = FactoryPair(TorchShortcut, PaddleShortcut, "shortcut")
    weights = str(tmp_path / "shortcut.pth")
    write_torch_state({key: value.double().numpy() for key, value in TorchShortcut().state_dict().items()}, weights)
    images = np.random.default_rng(0).standard_normal((4, 3, 8, 8))
    context = StepContext(12, "float64", weights, images, np.arange(4), 0, pair=pair)
    record, kept = record_side(pair.side("torch"), torch_layers, context, {})
    assert sorted(kept) == [f"{mode}.grad.{unit}" for mode in MODES for unit in ("<__add__>.input1", "relu.input")]
    monkeypatch.setattr(worker, "recorded_bit_for_bit", lambda value, recorded: False)
    _, every = record_side(pair.side("torch"), torch_layers, context, {})
    assert len(every) > 3 * len(kept)
    read_otherwise = [key for mode in MODES for direction in DIRECTIONS for layer in record.layers[mode]
                      for (key, value, _), (_, recorded, _) in zip(alone_values(layer, mode, direction, record, (kept, {})),
                                                                   alone_values(layer, mode, direction, record, (every, {})))
                      if not np.array_equal(value, recorded)]
    assert not read_otherwise, read_otherwise


def unit(name, type_, parameters=()):
    return {"name": name, "type": type_, "parameters": list(parameters)}


def test_units_pair_by_what_runs_across_different_nesting_and_an_extra_activation():
    """Key-map anchors in run order; between them, units by operator kind (relu6 with relu, a functional
    pool with a pool layer, squeeze with flatten); Paddle's extra activation pairs with nothing."""
    key_map = {"net.features.0.weight": "backbone.conv1.weight", "net.fc.weight": "head.linear.weight"}
    torch_units = [unit("net.features.0", "Conv2d", ["net.features.0.weight"]), unit("net.features.1", "ReLU6"),
                   unit("net.<adaptive_avg_pool2d>", "adaptive_avg_pool2d"), unit("net.<flatten>", "flatten"),
                   unit("net.fc", "Linear", ["net.fc.weight"])]
    paddle_units = [unit("backbone.conv1", "Conv2D", ["backbone.conv1.weight"]), unit("backbone.<relu>", "relu"),
                    unit("pool", "AdaptiveAvgPool2D"), unit("extra", "Sigmoid"), unit("<squeeze>", "squeeze"),
                    unit("head.linear", "Linear", ["head.linear.weight"])]
    assert pair_layers(torch_units, paddle_units, key_map) == {
        "backbone.conv1": "net.features.0", "backbone.<relu>": "net.features.1", "pool": "net.<adaptive_avg_pool2d>",
        "<squeeze>": "net.<flatten>", "head.linear": "net.fc"}


def test_a_channel_shuffle_and_a_global_mean_pair_by_kind_across_the_frameworks_names():
    """torchvision's ShuffleNetV2 against paddle.vision's: Tensor.view with paddle.reshape, torch.transpose
    with paddle.transpose (permute too), a mean over the spatial axes with an average-pool layer; Paddle's
    flatten after its pool pairs with nothing."""
    key_map = {"net.conv.weight": "conv.weight", "net.fc.weight": "fc.weight"}
    torch_units = [unit("net.conv", "Conv2d", ["net.conv.weight"]), unit("net.<cat>", "cat"),
                   unit("net.<view>", "view"), unit("net.<transpose>", "transpose"), unit("net.<view>#2", "view"),
                   unit("net.<permute>", "permute"), unit("<mean>", "mean"), unit("net.fc", "Linear", ["net.fc.weight"])]
    paddle_units = [unit("conv", "Conv2D", ["conv.weight"]), unit("<concat>", "concat"), unit("<reshape>", "reshape"),
                    unit("<transpose>", "transpose"), unit("<reshape>#2", "reshape"), unit("<transpose>#2", "transpose"),
                    unit("pool", "AdaptiveAvgPool2D"), unit("<flatten>", "flatten"), unit("fc", "Linear", ["fc.weight"])]
    assert pair_layers(torch_units, paddle_units, key_map) == {
        "conv": "net.conv", "<concat>": "net.<cat>", "<reshape>": "net.<view>", "<transpose>": "net.<transpose>",
        "<reshape>#2": "net.<view>#2", "<transpose>#2": "net.<permute>", "pool": "<mean>", "fc": "net.fc"}


def test_the_calls_kept_for_the_units_run_alone_hold_no_value_of_the_pass(contexts):
    """A unit's call is kept from the chained pass to run it alone afterwards: what it was fed and made, kept
    with it, would hold every activation of the pass in memory until then (Call.to_run_again)."""
    model = worker.build_model(torch_side, torch_layers, contexts[0])
    kept = {}
    worker.record_mode(torch_side, torch_layers, model, contexts[0], "eval", functions=kept)
    assert kept and all(call.layer is not None or call.function is not None for call in kept.values())
    assert [name for name, call in kept.items() if call.inputs or call.output is not None or call.copies] == []


def moving_record(output, output_gradient):
    """A record of one unit fed [[1, 2], [3, 4]] (its gradient [[5, 6], [7, 8]]) in eval mode."""
    values = {"eval.paddle:<u>.input": np.array([[1.0, 2.0], [3.0, 4.0]]), "eval.paddle:<u>.output": output,
              "eval.grad.paddle:<u>.input": np.array([[5.0, 6.0], [7.0, 8.0]]),
              "eval.grad.paddle:<u>.output": output_gradient}
    return Record({"eval": [{"name": "paddle:<u>", "inputs": [None]}], "train": []}, values, {})


def test_a_unit_moves_no_value_only_when_its_output_and_its_gradient_keep_its_inputs_order():
    """An unpaired Paddle unit that only moves values (a flatten) cannot be where rounding comes from; one
    that reorders them (a transpose), or back-propagates otherwise, can be a defect of its own."""
    flattened, gradient = np.array([1.0, 2.0, 3.0, 4.0]), np.array([5.0, 6.0, 7.0, 8.0])
    assert moves_no_value(moving_record(flattened, gradient), "paddle:<u>")
    assert not moves_no_value(moving_record(np.array([[1.0, 3.0], [2.0, 4.0]]), gradient.reshape(2, 2)), "paddle:<u>")
    assert not moves_no_value(moving_record(flattened, gradient * 2), "paddle:<u>")


def test_a_pool_that_keeps_its_axes_of_length_one_holds_a_means_values_and_no_other_shape_does():
    assert kept_unit_axes((4, 2, 1, 1), (4, 2)) and kept_unit_axes((4, 2), (4, 1, 2))
    assert not kept_unit_axes((4, 2), (4, 2)) and not kept_unit_axes((8, 1, 1), (4, 2))
    assert not kept_unit_axes((4, 2, 1, 1), (2, 4))


def row(layer, reaches_port, computes_port, alone_port=None):
    reference = np.ones(3)
    return LayerRow(layer, "Linear", compare_arrays("in", reference, reaches_port, NEAR_EXACT),
                    compare_arrays("out", reference, computes_port, NEAR_EXACT),
                    compare_arrays("alone", reference, reference if alone_port is None else alone_port, NEAR_EXACT))


def test_the_headline_is_the_layer_whose_own_difference_stands_orders_above_an_earlier_library_difference():
    """A BatchNorm's float32 epsilon (1e-9 on its own) before a wrong activation (0.1 on its own): the
    activation is where the defect starts, though what reaches it already differs."""
    agreeing, rounding, defect = np.ones(3), np.array([1.0, 1.0 + 1e-9, 1.0]), np.array([1.0, 1.1, 1.0])
    trace = Trace("train", "forward", [row("bn", agreeing, rounding, rounding), row("relu", rounding, defect, defect),
                                       row("bn2", defect, defect, rounding)])
    assert (trace.divergence()[0].layer, trace.divergence()[1]) == ("relu", "within")
    library_only = Trace("train", "forward", [row("bn", agreeing, rounding, rounding),
                                              row("bn2", rounding, rounding, rounding * 0 + [1.0, 1.0 + 5e-9, 1.0])])
    assert library_only.divergence() == (library_only.rows[0], "at")  # alike differences: the first, where it starts


def test_a_difference_that_reaches_a_layer_from_outside_every_layer_is_placed_before_it():
    agreeing, differing = np.ones(3), np.array([1.0, 2.0, 1.0])
    assert Trace("eval", "forward", [row("a", agreeing, agreeing), row("b", agreeing, differing),
                                     row("c", differing, differing)]).divergence()[1] == "at"
    before = Trace("eval", "forward", [row("a", agreeing, agreeing), row("b", differing, differing)]).divergence()
    assert (before[0].layer, before[1]) == ("b", "before")


def interpreter_with_planted_defect(folder, plant_source):
    """A python that plants a defect in every Paddle model the suite's sides build, as a user whose
    port has that defect would run it (sitecustomize runs at the interpreter's start)."""
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(textwrap.dedent(plant_source))
    python = folder / "python"
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{folder}:$PYTHONPATH" exec "{sys.executable}" "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    return python


UNTRANSPOSED_CLASSIFIER_4 = """
    import alignment.pairs.greedyhash.paddle_side as paddle_side

    build_model = paddle_side.build_model

    def build_model_with_defect(bit, dtype, weights):
        model = build_model(bit, dtype, weights)
        weight = model.alex.classifier[4].weight
        weight.set_value(weight.numpy().T)
        return model

    paddle_side.build_model = build_model_with_defect
"""


@pytest.fixture(scope="module")
def planted_run(module_tmp):
    """`python -m alignment.layers` on a port with the square weight left untransposed, in both weight sets:
    one layer process per side records them both (alignment.suite.run_layer_sides)."""
    python = interpreter_with_planted_defect(module_tmp("port") / "bin", UNTRANSPOSED_CLASSIFIER_4)
    workdir = module_tmp("layers")
    return workdir, run_module("alignment.layers", "--sizes", 64, "--bit", 12, "--dtypes", "float64", "--workdir",
                               workdir, "--paddle-python", python, "--cases", "all")


@pytest.mark.slow
def test_the_command_finds_a_planted_defect_in_separate_processes(planted_run):
    workdir, done = planted_run
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"float64, seeded-64px, eval mode, forward: first divergence at alex\.classifier\.4 \(Linear;"
                     r" paddle's made at paddle_impl/model\.py:\d+, called at paddle_impl/model\.py:\d+\): its input agrees, its output differs; fed torch's values,"
                     r" alex\.classifier\.4 differs", done.stdout), done.stdout
    folder = workdir / "float64" / "seeded-64px"
    for name in ("layers_torch.npz", "layers_paddle.npz", "layers_isolated_torch.npz", "layers_isolated_paddle.npz",
                 "layers_diff.log", "layers_diff.json", "layers_isolated_diff.log", "layers_localization.json"):
        assert (folder / name).is_file(), name
    torch_values = load_layer_values(str(folder / "layers_torch.npz"))
    assert set(torch_values) == set(load_layer_values(str(folder / "layers_paddle.npz")))
    assert set(load_layer_values(str(folder / "layers_isolated_paddle.npz"))) >= set(
        load_layer_values(str(folder / "layers_isolated_torch.npz")))  # torch's: what differs from its chained run
    assert "diff check failed" in (folder / "layers_diff.log").read_text()


@pytest.mark.slow
def test_one_layer_process_per_side_localizes_each_case_at_the_planted_layer(planted_run, contexts, reference):
    """Both cases recorded by one process per side, the Paddle one pairing each torch record as it comes:
    each case's localization names the planted layer, and the first case's is the one that both sides
    recorded in this process give."""
    workdir, done = planted_run
    for case in ("seeded-64px", "rescaled-64px"):
        assert re.search(rf"float64, {case}, eval mode, forward: first divergence at alex\.classifier\.4 ",
                         done.stdout), done.stdout
    for side in ("torch", "paddle"):
        log = (workdir / f"layers_{side}.log").read_text()
        assert re.findall(rf"^{side} layers (\S+) float64", log, re.MULTILINE) == ["seeded-64px", "rescaled-64px"]
    in_process = localize_port(contexts, reference, untransposed_square_weight)
    batched = json.loads((workdir / "float64" / "seeded-64px" / "layers_localization.json").read_text())
    assert [trace["first_divergence"] for trace in batched["traces"]] == [
        trace["first_divergence"] for trace in localization_as_json(in_process)["traces"]]


@pytest.mark.slow
def test_the_torch_layer_side_never_imports_paddle(planted_run):
    workdir, _ = planted_run
    assert not side_process_imports_paddle("alignment.layers.worker", "--model", "greedyhash", "--cases",
                                           "seeded-64px:float64", "--bit", 12, "--workdir", workdir)


def test_a_paddle_layer_side_whose_torch_side_ended_stops_naming_the_record_it_waited_for():
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as reference, os.fdopen(write_end, "wb", 0) as recorded:
        assert naming_on(recorded)(Case.from_label("seeded-64px"), "float64")
        wait_for_reference(reference, Case.from_label("seeded-64px"), "float64")
        recorded.close()
        with pytest.raises(SystemExit, match="torch side ended before recording rescaled-64px float32"):
            wait_for_reference(reference, Case.from_label("rescaled-64px"), "float32")


def test_a_torch_layer_side_stops_recording_once_the_paddle_side_stopped_reading():
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "wb", 0) as recorded:
        assert not naming_on(recorded)(Case.from_label("seeded-64px"), "float64")
def test_an_unknown_precision_is_refused(tmp_path):
    done = run_module("alignment.layers", "--dtypes", "float16", "--workdir", tmp_path)
    assert done.returncode == 2 and "unknown dtypes float16" in done.stderr
    assert not os.listdir(tmp_path)


def fake_interpreter(folder, name, script):
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_each_case_is_compared_while_the_paddle_layer_side_records_the_next(tmp_path):
    """The suite is told of each record the Paddle side names as soon as it is named, not when the side ends:
    a Paddle side that names its first record and waits to be answered before it goes on exits 0 only when
    it is; torch's and Paddle's names of the others are followed in the order the run asks for."""
    cases = {Case.from_label("seeded-64px"): ["float64", "float32"], Case.from_label("rescaled-64px"): ["float64"]}
    answered = tmp_path / "answered"
    paddle = textwrap.dedent(f"""\
        import os, sys, time
        fd = int(sys.argv[sys.argv.index("--recorded-fd") + 1])
        for line in ("seeded-64px float64", "seeded-64px float32", "rescaled-64px float64"):
            os.write(fd, (line + "\\n").encode())
            waited = time.monotonic()
            while not os.path.exists({str(answered)!r} + line.replace(" ", "-")):
                if time.monotonic() - waited > 10:
                    sys.exit(3)
                time.sleep(0.05)
        """)
    (tmp_path / "paddle.py").write_text(paddle)
    args = argparse.Namespace(in_process=False, workdir=str(tmp_path), bit=12, threads=1, seed=0, model="greedyhash",
                              torch_python=fake_interpreter(tmp_path, "torch", "exit 0"),
                              paddle_python=fake_interpreter(tmp_path, "paddle",
                                                             f"exec {sys.executable} {tmp_path / 'paddle.py'} \"$@\""))
    told = []

    def on_recorded(case, dtype):
        told.append(f"{case.label} {dtype}")
        (tmp_path / f"answered{case.label}-{dtype}").touch()

    assert run_layer_sides(args, GREEDYHASH, cases, on_recorded) == {}
    assert told == ["seeded-64px float64", "seeded-64px float32", "rescaled-64px float64"]


@pytest.mark.parametrize("torch_exit, paddle_exit, failed", [(1, 1, "torch"), (0, 1, "paddle"), (0, 0, "paddle")])
def test_the_layer_side_that_failed_is_named_torch_first(tmp_path, torch_exit, paddle_exit, failed):
    """One process per side, started together: a Paddle side that waited for a torch side that failed fails
    too, and the torch side is the one named; a Paddle side that exits cleanly without naming the record
    it was to write has failed all the same (no case is left uncompared unseen)."""
    args = argparse.Namespace(in_process=False, workdir=str(tmp_path), bit=12, threads=1, seed=0, model="greedyhash",
                              torch_python=fake_interpreter(tmp_path, "torch", f"exit {torch_exit}"),
                              paddle_python=fake_interpreter(tmp_path, "paddle", f"exit {paddle_exit}"))
    found = run_layer_sides(args, GREEDYHASH, {Case.from_label("seeded-64px"): ["float64"]})
    assert found == {failed: str(tmp_path / f"layers_{failed}.log")}
