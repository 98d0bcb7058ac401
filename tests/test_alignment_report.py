"""The suite's one report (report.md, report.json) and the committed reference run it is kept as."""
import json
import re

import numpy as np
import pytest

from alignment.cases import Case
from alignment.coverage import LayerCoverage
from alignment.check import StepResult, check_step, compare_arrays, write_reports
from alignment.layers.localize import LayerRow, Localization, Trace
from alignment.pairs import pair_named
from alignment.pairs.greedyhash import GREEDYHASH
from alignment.paths import diff_paths
from alignment.report import LARGEST_REFERENCE_FILE, closing_line, keep_reference, terminal_summary, write_report
from alignment.diagnosis import ROUNDING
from alignment.tolerances import NEAR_EXACT
from alignment.verdict import verdict_table, verdicts
from greedyhash_common.infra.atomic import replace_folder

from .conftest import run_module
from .test_alignment_layers import UNTRANSPOSED_CLASSIFIER_4, interpreter_with_planted_defect

ENV = {dtype: {"torch": {"framework": "torch", "version": "2.x", "threads": 1, "dtype": dtype},
               "paddle": {"framework": "paddle", "version": "3.x", "threads": 1, "dtype": dtype}}
       for dtype in ("float32", "float64")}
CASE = Case("seeded", 64)


def no_bare_nan(text):
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))


def run_steps(workdir, step_values):
    """StepResults of steps given as {(step, dtype): (torch values, paddle values)}, with their diff files."""
    results = []
    for (step, dtype), (torch_values, paddle_values) in step_values.items():
        result = check_step(step, dtype, torch_values, paddle_values)
        result.case = CASE
        write_reports(result, ENV[dtype], *diff_paths(str(workdir), dtype, CASE, step))
        results.append(result)
    return results


def passing_and_failing(workdir):
    same = {"h": np.ones(3)}
    return run_steps(workdir, {("forward", "float32"): (same, same), ("warp", "float64"): (same, same),
                               ("forward", "float64"): (same, {"h": np.array([1.0, np.nan, 1.0])})})


def test_one_row_per_step_whatever_its_name_with_both_precisions(tmp_path):
    rows = verdicts(passing_and_failing(tmp_path), {})
    report = write_report(str(tmp_path), rows, ENV, {}, {}, {"bit": 48, "data": None}, pair=GREEDYHASH)
    markdown = (tmp_path / "report.md").read_text()
    assert "# Alignment report: FAILED (2/3 checks)" in markdown
    assert "| step | case | float32 | worst key | max abs | max rel | limit | float64 | worst key |" in markdown
    assert "| forward | seeded-64px | [pass](float32/seeded-64px/forward_diff.log) | `h` |" in markdown
    assert "[**FAIL** (defect)](float64/seeded-64px/forward_diff.log) | `h` | nan | nan | 0 |" in markdown
    assert markdown.splitlines()[2] == "- forward seeded-64px float64: FAIL; DEFECT: NaN or Inf in paddle [h]"
    assert "| warp | seeded-64px | not run |" in markdown and "[pass](float64/seeded-64px/warp_diff.log)" in markdown
    assert "- forward seeded-64px, float64: NaN or Inf in paddle" in markdown
    assert "Run: bit 48, data default." in markdown
    assert "| dtype | float32, float64 | float32, float64 |" in markdown
    assert no_bare_nan((tmp_path / "report.json").read_text()) == json.loads(json.dumps(report))
    assert [step["step"] for step in report["steps"]] == ["forward", "warp"]


def test_the_train_steps_differences_are_drawn_and_shown(tmp_path):
    series = {"loss_total": np.linspace(1.0, 2.0, 20), "lr": np.full(20, 1e-3)}
    shifted = {**series, "loss_total": series["loss_total"] + 1e-9}
    results = run_steps(tmp_path, {("train", "float64"): (series, shifted)})
    (tmp_path / "predict-torch.png").write_bytes(b"not of this run")
    report = write_report(str(tmp_path), verdicts(results, {}), ENV, {}, {}, {}, pair=GREEDYHASH)
    markdown = (tmp_path / "report.md").read_text()
    assert report["figures"] == ["figures/train_differences.png"] and "predict" not in markdown
    assert "![train_differences](figures/train_differences.png)" in markdown
    assert (tmp_path / "figures" / "train_differences.png").read_bytes().startswith(b"\x89PNG")


def test_a_localized_case_gets_its_divergence_profile(tmp_path):
    localization = Localization("float64", [Trace("eval", direction, [layer_row("fc", np.ones(3))])
                                            for direction in ("forward", "backward")], [], CASE)
    report = write_report(str(tmp_path), verdicts(passing_and_failing(tmp_path), {}), ENV,
                          {("float64", CASE): localization}, {}, {}, pair=GREEDYHASH)
    assert report["figures"] == ["figures/divergence_seeded-64px.png"]


def layer_row(layer, port):
    reference = np.ones(3)
    return LayerRow(layer, "Linear", compare_arrays("in", reference, reference, NEAR_EXACT),
                    compare_arrays("out", reference, port, NEAR_EXACT),
                    compare_arrays("alone", reference, port, NEAR_EXACT))


def test_a_failing_forward_step_carries_the_localization_table(tmp_path):
    differing = np.array([1.0, 3.0, 1.0])
    localization = Localization("float64", [
        Trace("eval", "forward", [layer_row("alex.classifier.1", np.ones(3)),
                                  layer_row("alex.classifier.4", differing)]),
        Trace("eval", "backward", [layer_row("fc", np.ones(3))])], [], CASE)
    rows = verdicts(passing_and_failing(tmp_path), {})
    report = write_report(str(tmp_path), rows, ENV, {("float64", CASE): localization}, {}, {}, pair=GREEDYHASH)
    markdown = (tmp_path / "report.md").read_text()
    section = markdown[markdown.index("## Localization"):]
    assert section.count("### ") == 1 and "### forward, float64, seeded-64px" in section
    assert "first divergence at alex.classifier.4 (Linear): its input agrees, its output differs" in section
    assert "> alex.classifier.4" in section and "backward" not in section
    assert "[layer diff log](float64/seeded-64px/layers_diff.log)" in section
    traces = report["localization"]["float64, seeded-64px"]["traces"]
    assert traces[0]["first_divergence"] == {"layer": "alex.classifier.4", "type": "Linear", "place": "at",
                                             "operator": "", "paddle_source": "", "paddle_called_at": ""}


def test_the_reference_keeps_the_small_files_and_replaces_the_old_ones(tmp_path):
    run, kept = tmp_path / "run", tmp_path / "reference"
    for name in ("report.md", "report.json", "summary.json", "float64/seeded-64px/forward_diff.log",
                 "float64/seeded-64px/forward_diff.json", "float64/env_torch.json",
                 "float64/seeded-64px/forward_torch.npy", "coverage/seeded-64px.json", "coverage/seeded-64px.stamp.json",
                 "figures/train_differences.png", "inputs/images_64px.npy", "side_torch.log"):
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(name)
    (kept / "float32").mkdir(parents=True)
    (kept / "float32" / "stale_diff.log").write_text("from an older run")
    keep_reference(str(run), str(kept))
    assert sorted(str(path.relative_to(kept)) for path in kept.rglob("*") if path.is_file()) == [
        "coverage/seeded-64px.json", "figures/train_differences.png", "float64/env_torch.json",
        "float64/seeded-64px/forward_diff.json", "float64/seeded-64px/forward_diff.log", "report.json",
        "report.md", "summary.json"]


def test_the_reference_keeps_its_committed_mutation_scores(tmp_path):
    run, kept = tmp_path / "run", tmp_path / "reference"
    run.mkdir()
    (run / "report.md").write_text("report")
    for folder in ("mutants", "mutants-resnet18-torch-bn"):
        (kept / folder).mkdir(parents=True)
        (kept / folder / "mutation.json").write_text("{}")
    keep_reference(str(run), str(kept))
    assert (kept / "report.md").exists()
    for folder in ("mutants", "mutants-resnet18-torch-bn"):
        assert (kept / folder / "mutation.json").read_text() == "{}"


def test_the_report_prints_the_folders_mutation_score_else_the_committed_one(tmp_path):
    rows = verdicts(passing_and_failing(tmp_path), {})
    write_report(str(tmp_path), rows, ENV, {}, {}, {}, pair=GREEDYHASH)
    committed = (tmp_path / "report.md").read_text()
    assert "## Mutation score" in committed and "mutation score 100.0%" in committed
    assert "logs/reference/mutants/mutation.md))" in committed
    (tmp_path / "mutants").mkdir()
    (tmp_path / "mutants" / "mutation.json").write_text(json.dumps({
        "score": 0.5, "killed": 1, "survived": 1, "equivalent": 0, "not_viable": 0, "checked": 2, "listed": 2,
        "seconds": 9, "control_failed": False, "settings": {}}))
    write_report(str(tmp_path), rows, ENV, {}, {}, {}, pair=GREEDYHASH)
    own = (tmp_path / "report.md").read_text()
    assert "mutation score 50.0%: 1 killed, 1 survived of 2" in own and "([report](mutants/mutation.md))" in own


def test_another_pairs_report_claims_no_mutation_score(tmp_path):
    """The mutation operators are written for GreedyHash's port: its score says nothing of another pair."""
    write_report(str(tmp_path), verdicts(passing_and_failing(tmp_path), {}), ENV, {}, {}, {"model": "resnet18"},
                 pair=pair_named("resnet18"))
    assert "utation" not in (tmp_path / "report.md").read_text()
    assert "mutation_score" not in json.loads((tmp_path / "report.json").read_text())


def test_a_folder_is_replaced_whole_and_kept_as_it_was_when_its_filling_fails(tmp_path):
    """greedyhash_common.infra.atomic.replace_folder, which keep_reference and make align-mutants-reference use."""
    folder = tmp_path / "kept"
    folder.mkdir()
    (folder / "old.md").write_text("old")

    def failing(staging):
        (tmp_path / "kept.new" / "half.md").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        replace_folder(str(folder), failing)
    assert sorted(path.name for path in folder.iterdir()) == ["old.md"]
    replace_folder(str(folder), lambda staging: open(f"{staging}/new.md", "w").close())
    assert sorted(path.name for path in folder.iterdir()) == ["new.md"] and not (tmp_path / "kept.new").exists()


def test_a_large_file_is_not_kept_as_reference(tmp_path):
    run = tmp_path / "run"
    (run / "float64" / "seeded-64px").mkdir(parents=True)
    (run / "report.md").write_text("report")
    (run / "float64" / "seeded-64px" / "train_diff.json").write_bytes(b" " * (LARGEST_REFERENCE_FILE + 1))
    done = run_module("alignment.report", "keep-reference", run, tmp_path / "reference")
    assert done.returncode == 2 and "train_diff.json" in done.stderr
    assert not (tmp_path / "reference").exists()


@pytest.mark.slow
def test_the_suite_localizes_a_failing_forward_step_in_its_report(tmp_path):
    python = interpreter_with_planted_defect(tmp_path / "port", UNTRANSPOSED_CLASSIFIER_4)
    workdir = tmp_path / "logs"
    done = run_module("alignment", "--steps", "forward", "--dtypes", "float64", "--sizes", 64,
                      "--weight-sets", "seeded", "--bit", 12, "--workdir", workdir, "--paddle-python", python)
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"forward seeded-64px float64: FAIL; DEFECT: first divergence at alex\.classifier\.4 \(Linear;"
                     r" made at [^)]+\), eval mode; layers that differ fed torch's values: alex\.classifier\.4",
                     done.stdout), done.stdout
    assert f"report: {workdir / 'report.md'}" in done.stdout
    markdown = (workdir / "report.md").read_text()
    assert "### forward, float64, seeded-64px" in markdown and "> alex.classifier.4" in markdown
    report = no_bare_nan((workdir / "report.json").read_text())
    assert report["environment"]["sides"]["paddle"]["framework"] == "paddle"
    traces = report["localization"]["float64, seeded-64px"]["traces"]
    assert {trace["first_divergence"]["layer"] for trace in traces if trace["direction"] == "forward"} == {
        "alex.classifier.4"}
    for name in ("forward_torch.npy", "forward_paddle.npy", "forward_diff.log"):
        assert (workdir / "float64" / "seeded-64px" / name).is_file()
    assert "figures/divergence_seeded-64px.png" in report["figures"]


def _localization(isolated_agrees):
    agree = compare_arrays("x", np.ones(3), np.ones(3), NEAR_EXACT)
    differ = compare_arrays("x", np.ones(3), np.full(3, 2.0), NEAR_EXACT)
    row = LayerRow("alex.features.12", "MaxPool2d", agree, differ, agree if isolated_agrees else differ)
    return Localization("float32", [Trace("eval", "backward", [row])], [], CASE)


@pytest.mark.parametrize("isolated_agrees", [True, False])
def test_a_float32_failure_passes_as_rounding_only_when_every_layer_agrees_alone(isolated_agrees):
    failing = StepResult("backward", "float32", [compare_arrays("g", np.ones(2), np.array([1.0, 1.5]), NEAR_EXACT)],
                         CASE)
    exact = StepResult("backward", "float64", [compare_arrays("g", np.ones(2), np.ones(2), NEAR_EXACT)], CASE)
    rows = verdicts([failing, exact], {("float32", CASE): _localization(isolated_agrees)})
    assert rows[0].passed is isolated_agrees and rows[0].as_rounding is isolated_agrees
    assert (rows[0].kind == ROUNDING) is isolated_agrees
    assert ("1 passed as rounding: backward seeded-64px float32" in closing_line(rows, [], "logs")) is isolated_agrees
    unexplained = verdicts([failing, StepResult("backward", "float64", failing.keys, CASE)],
                               {("float32", CASE): _localization(True)})[0]
    assert unexplained.passed is False  # float64 fails too: not rounding
    elsewhere = StepResult("backward", "float64", exact.keys, Case("rescaled", 64))
    assert verdicts([failing, elsewhere], {("float32", CASE): _localization(True)})[0].passed is False


def test_the_terminal_summary_fits_one_screen_at_any_depth():
    """15 failing checks of a model of 160 layers, 150 of them not covered: the table, one line of
    diagnosis per check, at most 11 more; the closing line names five layers and counts the rest."""
    failing = [StepResult("forward", "float64", [compare_arrays(f"key{index}", np.ones(2), np.zeros(2), NEAR_EXACT)],
                          Case("seeded", 32 + index)) for index in range(15)]
    rows = verdicts(failing, {})
    layers = [LayerCoverage(f"features.{index}", ("ReLU6", "MaxPool2d", "Dropout")[index % 3], {}, {}, {},
                            dict.fromkeys(["inputs beyond 6"] if index % 3 == 0 else ["a window cut by the border", "x"],
                                          [])) for index in range(150)]
    screen = (verdict_table(rows, [("step", 10), ("case", 16), ("dtype", 8)]) + "\n"
              + terminal_summary("logs", rows, {}, layers) + "\n" + closing_line(rows, layers, "logs")).splitlines()
    assert len(screen) <= 2 * len(rows) + 11
    assert sum(line.startswith("forward seeded-") and "DEFECT: differs beyond its limit" in line for line in screen) == 15
    assert "not covered: 50 layers (features.0, features.3, features.6, features.9, features.12 and 45 more) (ReLU6):" \
           " inputs beyond 6" in screen
    assert screen[-1].endswith("150 layers (features.0, features.1, features.2, features.3, features.4 and 145 more)"
                               " not covered; details in logs")


def deep_trace(direction, differing_at, count=160):
    reference = np.ones(3)
    rows = [LayerRow(f"features.{index}", "Conv2d", compare_arrays("in", reference, reference, NEAR_EXACT),
                     compare_arrays("out", reference, reference * (2.0 if index >= differing_at else 1.0), NEAR_EXACT),
                     compare_arrays("alone", reference, reference * (2.0 if index == differing_at else 1.0), NEAR_EXACT))
            for index in range(count)]
    return Trace("train", direction, rows)


def test_a_deep_models_layer_table_shows_the_region_around_the_divergence_and_links_the_rest(tmp_path):
    localization = Localization("float64", [deep_trace("forward", 80), Trace("eval", "forward", deep_trace(
        "forward", 10**6).rows)], [], CASE)
    failing = StepResult("forward", "float64", [compare_arrays("logits", np.ones(2), np.zeros(2), NEAR_EXACT)], CASE)
    report = write_report(str(tmp_path), verdicts([failing], {("float64", CASE): localization}), ENV,
                          {("float64", CASE): localization}, {}, {}, pair=GREEDYHASH)
    section = (tmp_path / "report.md").read_text().split("## Localization")[1]
    assert "> features.80" in section and "features.75 " in section and "features.74 " not in section
    assert "features.86 " not in section and "of 320 rows" in section and "[layer diff log]" in section
    assert report["figures"] == ["figures/divergence_seeded-64px.png"]


def test_the_profile_shows_the_failing_mode_with_readable_labels_at_any_depth():
    from alignment.figures import MAX_LABELS, label_every, profile_series, failing_mode

    localization = Localization("float64", [deep_trace("forward", 80), Trace("eval", "forward", deep_trace(
        "forward", 10**6).rows)], [], CASE)
    assert failing_mode({"float64": localization}) == "train"
    layers, _, _, first = profile_series(localization, "train", "forward")
    assert layers[first] == "features.80"
    positions, names = label_every(layers)
    assert len(names) <= MAX_LABELS and names[:2] == ["features.0", "features.4"]
