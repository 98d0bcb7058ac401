"""The zoo (alignment.zoo, make zoo): torchvision's and paddle.vision's models through the one-call path, as
shipped and corrected, each cell read from the run's diagnosis. The full zoo is not in the tests (docs/zoo.md says
what it costs); three cheap families are."""
import json

import pytest

from alignment import known_differences, zoo
from alignment.cases import Case
from alignment.diagnosis import DEFECT, KNOWN, ROUNDING, Finding
from alignment.verdict import StepVerdict

CHEAP = ("squeezenet1_1", "mobilenet_v3_small", "shufflenet_v2_x0_5")


def test_every_zoo_entry_is_a_model_both_libraries_ship():
    import paddle.vision.models
    import torchvision.models

    for _, torch_name, paddle_name, _, _ in zoo.ZOO:
        assert callable(getattr(torchvision.models, torch_name)) and callable(getattr(paddle.vision.models, paddle_name))


def test_an_unknown_zoo_model_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        zoo.main(["--models", "lenet", "--workdir", str(tmp_path)])
    error = capsys.readouterr().err
    assert exited.value.code == 2 and error.count("\n") == 1 and "--models lenet: choose from squeezenet1_1" in error


def verdict(step, dtype, findings=()):
    return StepVerdict(step=step, case=Case("seeded", 64), dtype=dtype, worst_key="k", max_abs=0.0, max_rel=0.0,
                       limit=0.0, findings=tuple(findings))


def test_the_zoos_cells_are_read_from_the_diagnosis():
    variance = Finding(KNOWN, known_differences.RUNNING_VARIANCE.format(value=64), ("train_buffer.1.running_var",))
    hardsigmoid = Finding(KNOWN, "; ".join(known_differences.HARDSIGMOID.format(layer=layer) for layer in "ab"),
                          ("logits",))
    defect = Finding(DEFECT, "first divergence at features.1 (ReLU6 / ReLU: relu6 vs relu), eval mode", ("logits",))
    rounding = Finding(ROUNDING, "float32 only", ("grad.1.weight",))
    assert zoo.run_summary([verdict("forward", "float64")])["verdict"] == "aligns"
    assert zoo.run_summary([verdict("forward", "float32", [rounding])])["verdict"] == "aligns up to rounding"
    summary = zoo.run_summary([verdict("forward", "float64", [variance, hardsigmoid]),
                               verdict("backward", "float64", [defect]), verdict("forward", "float32", [rounding])])
    assert summary["verdict"] == "differs" and summary["checks_passed"] == 1
    assert summary["differences"] == ["BatchNorm running variance", "Hardsigmoid formula"]
    assert summary["defects"] == ["backward seeded-64px float64"]
    cell = zoo.run_cell({**summary, "seconds": 3})
    assert cell == ("differs (1/3 checks, 3 s)<br>known: BatchNorm running variance<br>known: Hardsigmoid formula"
                    "<br>defect: backward seeded-64px float64")


@pytest.mark.slow
def test_three_families_through_one_call_name_their_library_differences_from_the_diagnosis(tmp_path):
    """About two minutes and a half on the 2-core machine: three small models, each run twice (forward, loss,
    backward; float64 and float32; 64 px; failing cases localized)."""
    paths = {"json": tmp_path / "zoo.json", "markdown": tmp_path / "zoo.md"}
    zoo.main(["--models", ",".join(CHEAP), "--workdir", str(tmp_path / "runs"),
              *(f"--{name}={path}" for name, path in paths.items())])
    rows = {row["torch"].rpartition(".")[2]: row for row in json.loads(paths["json"].read_text())}
    assert sorted(rows) == sorted(CHEAP)
    squeezenet = rows["squeezenet1_1"]
    assert squeezenet["shipped"]["verdict"] == "differs"
    assert {"convolution padding", "dropout mode"} <= set(squeezenet["shipped"]["differences"])
    assert squeezenet["corrected"]["checks_passed"] > squeezenet["shipped"]["checks_passed"]
    # MobileNetV3: torch's Hardsigmoid back-propagates float32(1/6) even in float64, Paddle's its float32 slope;
    # corrected with torch's forward and gradient (and BatchNorm's differences), it aligns
    mobilenet = rows["mobilenet_v3_small"]
    assert {"BatchNorm running variance", "BatchNorm epsilon precision", "Hardsigmoid formula"} <= set(
        mobilenet["shipped"]["differences"])
    assert mobilenet["corrected"]["verdict"] == "aligns", mobilenet["corrected"]["diagnosis"]
    # ShuffleNetV2: corrected, it aligns up to rounding (its channel shuffles' Tensor methods paired with
    # Paddle's functions: test_shufflenets_channel_shuffle_pairs_...)
    shufflenet = rows["shufflenet_v2_x0_5"]
    assert "BatchNorm running variance" in shufflenet["shipped"]["differences"]
    assert shufflenet["corrected"]["verdict"] == "aligns up to rounding", shufflenet["corrected"]["diagnosis"]
    markdown = paths["markdown"].read_text()
    assert "known: Hardsigmoid formula" in markdown and "Incomplete" not in markdown


def corrected(tmp_path, name, steps, planted_layer=None):
    """The alignment of the zoo's model `name` corrected, `steps` in float64 and float32 at 64 px;
    `planted_layer`: a Paddle layer whose float32 output (alone) is scaled by 1 + 1e-3."""
    import paddle

    from alignment import align

    entry = next(entry for entry in zoo.ZOO if entry[1] == name)
    torch_model, paddle_model = zoo.build(entry, zoo.applicable_corrections(entry))
    if planted_layer:
        dict(paddle_model.named_sublayers())[planted_layer].register_forward_post_hook(
            lambda layer, inputs, output: output * (1 + 1e-3) if output.dtype == paddle.float32 else None)
    return align(torch_model, paddle_model, sizes=(64,), dtypes=("float64", "float32"), steps=steps,
                 workdir=str(tmp_path), name=name)


def by_step(result, dtype):
    return {row.step: row for row in result.rows if row.dtype == dtype}


@pytest.mark.slow
def test_densenets_fused_activations_are_how_its_trees_are_cut_and_a_float32_defect_under_them_is_named(tmp_path):
    """About a minute. Paddle's DenseNet runs each ReLU inside its BatchNorm (act="relu") and concatenates
    features at each layer's end where torch's does at the next one's start: those layers differ fed torch's
    values in float64 alike. Its float32 backward failure is rounding; a float32-only error planted in one
    BatchNorm is a defect named at that layer, not at the first of the layers that differ by how the trees
    are cut."""
    honest = by_step(corrected(tmp_path / "honest", "densenet121", ("forward", "backward")), "float32")["backward"]
    assert honest.passed and honest.kind == ROUNDING, honest.line()
    assert "which differ so in float64 alike" in honest.line()
    planted = by_step(corrected(tmp_path / "planted", "densenet121", ("forward",),
                                "db_conv_2.conv2_1.bn_ac_func1._batch_norm"), "float32")["forward"]
    assert not planted.passed and planted.kind == DEFECT, planted.line()
    assert "first divergence at features.denseblock1.denselayer1.norm1 " in planted.line()


def shuffle_with_height_and_width_swapped(x, groups):
    """paddle.vision's channel shuffle with one wrong axis in its transpose: a square map keeps its shape."""
    import paddle

    batch_size, channels, height, width = x.shape[0:4]
    x = paddle.reshape(x, shape=[batch_size, groups, channels // groups, height, width])
    x = paddle.transpose(x, perm=[0, 2, 1, 4, 3])  # the planted line: [0, 2, 1, 3, 4] in paddle.vision
    return paddle.reshape(x, shape=[batch_size, channels, height, width])


@pytest.mark.slow
def test_shufflenets_channel_shuffle_pairs_its_views_and_transpose_and_a_wrong_axis_there_is_named(tmp_path,
                                                                                                    monkeypatch):
    """About 25 s. torchvision's channel shuffle is Tensor.view, torch.transpose, .contiguous(), Tensor.view;
    paddle.vision's paddle.reshape, paddle.transpose, paddle.reshape; torch's global pool a Tensor.mean,
    Paddle's an average-pool layer and a flatten. Recorded and paired, every Paddle unit is accounted for (the
    flatten moves no value), and ShuffleNetV2 corrected aligns up to rounding; a wrong axis in Paddle's
    transpose is a defect named at the first shuffle's transpose, in float64 and float32."""
    import paddle.vision.models.shufflenetv2

    honest = corrected(tmp_path / "honest", "shufflenet_v2_x0_5", ("forward", "backward"))
    for row in by_step(honest, "float32").values():
        assert row.passed and row.kind == ROUNDING, row.line()
    localization = honest.localizations[("float32", Case("seeded", 64))]
    assert localization.paddle_only == [], localization.unpaired
    assert [(unit["name"], unit["moves_no_value"]) for unit in localization.unpaired] == [("<flatten>", True)]
    rows = {row.layer: row.types for row in localization.trace("eval", "forward").rows}
    assert (rows["stage2.0.<view>"], rows["stage2.0.<transpose>"], rows["stage2.0.<view>#2"], rows["<mean>"]) == (
        "view / reshape", "transpose", "view / reshape", "mean / AdaptiveAvgPool2D")
    monkeypatch.setattr(paddle.vision.models.shufflenetv2, "channel_shuffle", shuffle_with_height_and_width_swapped)
    planted = corrected(tmp_path / "planted", "shufflenet_v2_x0_5", ("forward",))
    for row in planted.rows:
        assert not row.passed and row.kind == DEFECT, row.line()
        assert "first divergence at stage2.0.<transpose> (transpose; made at tests/test_zoo.py:" in row.line()
