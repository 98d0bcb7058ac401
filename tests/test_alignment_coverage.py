"""Coverage (alignment.coverage) counts what training mode exercised too: a BatchNorm in training mode
normalizes with the batch's statistics, so the ReLU6 after it sees other inputs than in eval mode."""
import json
import types
import weakref

import numpy as np

from alignment import coverage
from alignment.pairs.base import ModelPair
from alignment.sides import torch_tensors
from alignment.steps import StepContext

BEYOND = "inputs beyond 6"


class BatchNormThenClamp(ModelPair):
    """A test-local pair (alignment.pairs.base.ModelPair): BatchNorm2d, ReLU6, a pooled linear head. The running variance is
    large, so in eval mode the ReLU6 sees inputs within (-1, 1); in training mode the batch's own statistics
    and the weight 10 take them beyond 6, where ReLU6 and ReLU part."""
    NAME, STEPS, OUTPUTS = "batch-norm-clamp", ("forward",), ("logits",)

    def build(self, framework):
        if framework == "torch":
            import torch

            model = torch.nn.Sequential(torch.nn.BatchNorm2d(3), torch.nn.ReLU6(), torch.nn.AdaptiveAvgPool2d(1),
                                        torch.nn.Flatten(), torch.nn.Linear(3, 10)).double().eval()
            with torch.no_grad():
                model[0].weight.fill_(10.0)
                model[0].running_var.fill_(1e4)
            return model
        import paddle

        model = paddle.nn.Sequential(paddle.nn.BatchNorm2D(3), paddle.nn.ReLU6(), paddle.nn.AdaptiveAvgPool2D(1),
                                     paddle.nn.Flatten(), paddle.nn.Linear(3, 10))
        model.to(dtype="float64")
        model[0].weight.set_value(paddle.full([3], 10.0, dtype="float64"))
        model[0]._variance.set_value(paddle.full([3], 1e4, dtype="float64"))
        model.eval()
        return model

    def inject_randomness(self, side, model, seed):
        pass  # no dropout to inject masks into

    def loss_terms(self, side, outputs, labels):
        import torch.nn.functional as functional

        return {"loss_total": functional.cross_entropy(outputs["logits"], labels)}


def torch_side():
    return types.SimpleNamespace(NAME="torch", build_model=lambda bit, dtype, weights: BatchNormThenClamp().build("torch"),
                                 tensor=torch_tensors.tensor, numpy=torch_tensors.numpy, backward=torch_tensors.backward)


def test_a_criterion_met_only_in_training_mode_counts_and_its_facts_are_kept():
    images = np.random.default_rng(0).standard_normal((4, 3, 6, 6))
    context = StepContext(0, "float64", None, images, np.array([1, 2, 3, 4]), 0, image_size=6,
                          pair=BatchNormThenClamp())
    rows = {row["layer"]: row for row in coverage.record(torch_side(), context)["rows"]}
    relu = rows["1"]
    assert relu["facts"]["largest_input"] < 1 < 6 < relu["facts"]["train_largest_input"]
    assert relu["criteria"][BEYOND] and relu["input"]["max"] == relu["facts"]["train_largest_input"]
    merged, = [row for row in coverage.merge({"seeded-6px": {"rows": [relu]}})]
    assert merged.covered and merged.criteria[BEYOND] == ["seeded-6px"]
    assert coverage.LayerCoverage.from_json(json.loads(json.dumps(merged.as_json()))) == merged


def test_the_codes_breakpoint_is_the_pairs():
    """|h| on both sides of the pair's CODE_BREAKPOINT (GreedyHash's 1), h being its CODE_LAYER's output: here the
    head's logits, far within +-1000; a pair without a breakpoint has no such criterion."""
    class WithCodes(BatchNormThenClamp):
        CODE_LAYER, CODE_BREAKPOINT = "4", 1000.0

    images = np.random.default_rng(0).standard_normal((4, 3, 6, 6))
    context = StepContext(0, "float64", None, images, np.array([1, 2, 3, 4]), 0, image_size=6, pair=WithCodes())
    codes = coverage.record(torch_side(), context)["rows"][-1]
    assert codes["layer"] == coverage.CODE_ROW and codes["criteria"]["|h| on both sides of 1000"] is False
    assert codes["facts"]["below_1000"] == codes["facts"]["values"] == 40
    assert list(coverage.code_row(np.array([0.5, -1.5]), None)["criteria"]) == ["h of both signs"]


def test_a_pair_without_a_layout_of_its_own_has_the_one_its_two_builds_infer():
    """ModelPair.layout's default: the key map inferred from the two models' trees, BatchNorm's buffers
    renamed and the Linear weight transposed."""
    layout = BatchNormThenClamp().layout()
    assert layout.key_map["0.running_var"] == "0._variance" and layout.transposed == ("4.weight",)
    assert layout.paddle_shapes()["4.weight"] == (3, 10)


def test_the_committed_reference_coverage_reads_back_as_written():
    """report.json's coverage rows, written by an older run (logs/reference/), read back as LayerCoverage: each
    says covered or not, and which criteria are unmet, as it was written."""
    import os

    from tests.conftest import PROJECT_ROOT

    with open(os.path.join(PROJECT_ROOT, "logs", "reference", "report.json"), encoding="utf-8") as handle:
        written = json.load(handle)
    rows = [coverage.LayerCoverage.from_json(entry) for entry in written["coverage"]]
    assert rows and [json.loads(json.dumps(row.as_json())) for row in rows] == written["coverage"]
    assert [row.layer for row in coverage.not_covered(rows)] == written["not_covered"]
    uncovered = {**written["coverage"][0], "criteria": {BEYOND: [], "gradient reaches it": ["seeded-224px"]},
                 "covered": False, "gaps": [BEYOND]}
    assert coverage.LayerCoverage.from_json(uncovered).as_json() == uncovered


class Values(dict):
    """A mode's values, as record_mode returns them, that a weak reference can follow."""


def test_a_modes_values_are_let_go_before_the_next_mode_runs(monkeypatch):
    """Coverage keeps what its rows take from each mode, not the mode's values: both modes' every value at once
    made the reference's step side 7.5 GB for ResNet-50 at 224 px in float64, 5.4 GB without."""
    images = np.random.default_rng(0).standard_normal((4, 3, 6, 6))
    context = StepContext(0, "float64", None, images, np.array([1, 2, 3, 4]), 0, image_size=6,
                          pair=BatchNormThenClamp())
    recorded, held_at_train = [], []
    real_record_mode = coverage.record_mode

    def followed(side, hooks, model, context, mode, *rest):
        held_at_train.extend(mode for mode, values in recorded if values() is not None)
        units, values = real_record_mode(side, hooks, model, context, mode, *rest)
        values = Values(values)
        recorded.append((mode, weakref.ref(values)))
        return units, values

    monkeypatch.setattr(coverage, "record_mode", followed)
    coverage.record(torch_side(), context)
    assert [mode for mode, _ in recorded] == ["eval", "train"] and held_at_train == []
