"""The zoo (alignment.zoo, make zoo): torchvision's and paddle.vision's models through the one-call path, as
shipped and corrected, each cell read from the run's diagnosis. The full zoo is not in the tests (docs/zoo.md says
what it costs); three cheap families are."""
import json

import pytest

from alignment import diagnosis, known_differences, zoo
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
    # ShuffleNetV2: corrected, float64 agrees; its float32 failures are not called rounding, as Paddle's average
    # pool and channel-shuffle reshapes pair with no torch unit (torch's are Tensor methods, not recorded)
    shufflenet = rows["shufflenet_v2_x0_5"]
    assert "BatchNorm running variance" in shufflenet["shipped"]["differences"]
    corrected = shufflenet["corrected"]
    assert corrected["defects"] == ["forward seeded-64px float32", "backward seeded-64px float32"], corrected
    assert all(diagnosis.UNPAIRED_HINT in line for line in corrected["diagnosis"])
    markdown = paths["markdown"].read_text()
    assert "known: Hardsigmoid formula" in markdown and "Incomplete" not in markdown


def densenet_float32(tmp_path, steps, planted_layer=None):
    """{step: Verdict} of DenseNet-121 corrected, `steps` in float64 and float32 at 64 px, its float32 checks;
    `planted_layer`: a Paddle layer whose float32 output (alone) is scaled by 1 + 1e-3."""
    import paddle

    from alignment import align

    entry = next(entry for entry in zoo.ZOO if entry[1] == "densenet121")
    torch_model, paddle_model = zoo.build(entry, zoo.applicable_corrections(entry))
    if planted_layer:
        dict(paddle_model.named_sublayers())[planted_layer].register_forward_post_hook(
            lambda layer, inputs, output: output * (1 + 1e-3) if output.dtype == paddle.float32 else None)
    result = align(torch_model, paddle_model, sizes=(64,), dtypes=("float64", "float32"),
                   steps=steps, workdir=str(tmp_path), name="densenet121")
    return {row.step: row for row in result.rows if row.dtype == "float32"}


@pytest.mark.slow
def test_densenets_fused_activations_are_how_its_trees_are_cut_and_a_float32_defect_under_them_is_named(tmp_path):
    """About a minute. Paddle's DenseNet runs each ReLU inside its BatchNorm (act="relu") and concatenates
    features at each layer's end where torch's does at the next one's start: those layers differ fed torch's
    values in float64 alike. Its float32 backward failure is rounding; a float32-only error planted in one
    BatchNorm is a defect named at that layer, not at the first of the layers that differ by how the trees
    are cut."""
    honest = densenet_float32(tmp_path / "honest", ("forward", "backward"))["backward"]
    assert honest.passed and honest.kind == ROUNDING, honest.line()
    assert "which differ so in float64 alike" in honest.line()
    planted = densenet_float32(tmp_path / "planted", ("forward",),
                               "db_conv_2.conv2_1.bn_ac_func1._batch_norm")["forward"]
    assert not planted.passed and planted.kind == DEFECT, planted.line()
    assert "first divergence at features.denseblock1.denselayer1.norm1 " in planted.line()
