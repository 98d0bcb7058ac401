"""The mutation operators and the mutation score (alignment/mutation/).

Fast: every operator changes what it mutates (on a small model holding a place for each model
operator), the seams are restored, the score and its explanations. Slow: the default run's score
against the committed one (what CI gates on), and a run in the configuration before the soundness
work, whose survivors must be explained by the coverage gaps they slip through.
"""
import argparse
import copy
import json
import os
import subprocess
import sys

import numpy as np
import paddle
import pytest
from paddle import nn
from paddle.vision.models.mobilenetv2 import InvertedResidual
from paddle.vision.models.resnet import BasicBlock

from alignment.coverage import LayerCoverage
from alignment.inputs import write_input_batch
from alignment.mutation import operators, score
from alignment.mutation import run as mutants_run
from alignment.mutation import worker as mutants_worker
from alignment.mutation.reference import committed_settings
from alignment.mutation.run import options_of, settings_of
from alignment.mutation.catalog import LOOP, MODEL, NAMES, OperatorSpec
from alignment.mutation.operators import MODEL_OPERATORS
from alignment.mutation.seams import Seams
from alignment.mutation.worker import CONTROL, installed, largest_change, mutant_record, mutate_model, same_models
from alignment.pairs.greedyhash.mutant_seams import LOSS_TERMS, GreedyHashSeams
from alignment.prepare_weights import prepare_weights
from alignment.pairs.greedyhash import GREEDYHASH as greedyhash
from alignment.pairs.greedyhash import paddle_side
from alignment.sides import reusing_builds
from greedyhash_common.infra.errors import UserInputError
from paddle_impl import train_step
from paddle_impl.optim import build_optimizer

from .conftest import PROJECT_ROOT


class EveryKind(nn.Layer):
    """A place for every model operator, each layer's output part of the model's: no later layer can hide
    a change (as a max-pool after a ReLU hides a LeakyReLU, or a BatchNorm a constant bias). In float64,
    its parameters not float32-representable (a loader that casts changes them)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2D(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.max_pool = nn.MaxPool2D(3, 2)
        self.avg_pool = nn.AvgPool2D(2, 1)
        self.batch_norm = nn.BatchNorm2D(4)
        self.adaptive_avg = nn.AdaptiveAvgPool2D(3)
        self.adaptive_max = nn.AdaptiveMaxPool2D(2)
        self.dropout = nn.Dropout(0.3)
        self.square = nn.Linear(16, 16)
        self.layer_norm = nn.LayerNorm(16)
        self.layer_norm_3d = nn.LayerNorm([4, 3, 3])  # over channels and both spatial axes
        self.activations = nn.LayerList([nn.ReLU6(), nn.Hardswish(), nn.Hardsigmoid(), nn.GELU()])
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear")
        self.block = BasicBlock(4, 4)
        self.downsampling_block = BasicBlock(4, 8, stride=2, downsample=nn.Sequential(
            nn.Conv2D(4, 8, 1, stride=2, bias_attr=False), nn.BatchNorm2D(8)))
        self.inverted_residual = InvertedResidual(4, 4, stride=1, expand_ratio=2)  # a depthwise convolution in it
        for layer in (self.conv, self.square):  # Paddle initializes biases to zero: zeroing them would change nothing
            layer.bias.set_value(np.full(layer.bias.shape, 0.5, dtype="float32"))
        for norm in self.inverted_residual.sublayers():  # its ReLU6s see inputs beyond 6
            if isinstance(norm, nn.BatchNorm2D):
                norm.weight.set_value(np.full(norm.weight.shape, 20.0, dtype="float32"))
        self.to(dtype="float64")
        for parameter in self.parameters():
            parameter.set_value(parameter.numpy() * (1 + 1e-9))

    def forward(self, x):
        features = self.conv(x)
        square = self.square(paddle.flatten(self.adaptive_max(features), 1))
        outputs = [features, self.relu(features), self.max_pool(features), self.avg_pool(features),
                   self.batch_norm(features), self.adaptive_avg(features), self.dropout(features), square,
                   self.layer_norm(square), self.layer_norm_3d(self.adaptive_avg(features)),
                   *(activation(features) for activation in self.activations),
                   self.upsample(features), self.block(features), self.downsampling_block(features),
                   self.inverted_residual(features)]
        return paddle.concat([paddle.flatten(output, 1) for output in outputs], 1)


def _operator(name):
    return next(operator for operator in operators.OPERATORS if operator.name == name)


def _outputs_and_state(model, images):
    """Outputs in training mode (seeded dropout) and eval mode, and the state after them (running stats)."""
    paddle.seed(0)
    model.train()
    train = model(images).numpy()
    model.eval()
    return [train, model(images).numpy(), *(value.numpy() for value in model.state_dict().values())]


def _differs(first, second):
    return len(first) != len(second) or any(a.shape != b.shape or not np.array_equal(a, b)
                                            for a, b in zip(first, second))


@pytest.mark.filterwarnings("ignore:When training, we now always track global mean and variance")
@pytest.mark.parametrize("operator", MODEL_OPERATORS, ids=lambda operator: operator.name)
def test_every_model_operator_changes_the_layer_it_mutates(operator):
    paddle.seed(1)
    model = EveryKind()
    places = operator.places(model, Seams())
    assert places, f"{operator.name} has no place in the test model"
    # 10 px: every max-pool window cut by the border, inputs of both signs beyond 6
    images = paddle.to_tensor(np.random.default_rng(0).standard_normal((2, 3, 10, 10)) * 20)
    viable = 0
    for place in places:
        mutated = mutate_model(copy.deepcopy(model), place, operator)
        try:
            outcome = _outputs_and_state(mutated, images)
        except ValueError:  # a shape no longer adds up (a residual block's): not viable, as the run marks it
            continue
        viable += 1
        assert _differs(_outputs_and_state(copy.deepcopy(model), images), outcome), \
            f"{operator.name}@{place} changed nothing"
    assert viable, f"{operator.name}: no viable place in the test model"


@pytest.mark.parametrize("place", ["layer_norm", "layer_norm_3d"])
def test_a_layer_norm_computed_over_its_own_axes_is_paddles_so_its_mutants_change_only_what_they_name(place):
    """The LayerNorm operators' computation at the layer's own axes and epsilon is Paddle's LayerNorm to
    rounding: the axes operator changes the axes alone, the epsilon one where the epsilon is added."""
    paddle.seed(1)
    model = EveryKind()
    norm = getattr(model, place)
    norm.weight.set_value(np.random.default_rng(0).uniform(0.5, 2, norm.weight.shape))
    x = paddle.to_tensor(np.random.default_rng(1).standard_normal((2, *norm._normalized_shape)))
    expected = norm(x).numpy()
    for name in ("layer_norm.axes", "layer_norm.epsilon_outside_sqrt"):
        mutated = getattr(mutate_model(copy.deepcopy(model), place, _operator(name)), place)
        assert not np.allclose(mutated(x).numpy(), expected, rtol=1e-9, atol=0), name
    operators.layer_norm_computed(norm, len(norm._normalized_shape))
    np.testing.assert_allclose(norm(x).numpy(), expected, rtol=1e-13, atol=1e-13)


def test_every_operator_of_the_catalog_is_implemented_and_nothing_else():
    assert list(operators.MUTATIONS) == list(NAMES)


def test_a_replaced_layer_keeps_the_mode_of_the_model():
    model = EveryKind()
    model.eval()
    assert not mutate_model(model, "dropout", _operator("dropout.mode")).dropout.training


def test_a_replaced_convolution_keeps_its_parameter_names():
    model = EveryKind()
    names = [name for name, _ in model.named_parameters()]
    assert [name for name, _ in mutate_model(model, "conv", _operator("conv.padding+1")).named_parameters()] == names


@pytest.mark.parametrize("term", LOSS_TERMS)
@pytest.mark.parametrize("factor", [-1.0, 10.0])
def test_loss_operators_reweight_one_term_of_the_total(term, factor):
    rng = np.random.default_rng(0)
    logits, h = (paddle.to_tensor(rng.standard_normal(shape)) for shape in ((4, 10), (4, 12)))
    labels = paddle.to_tensor(np.array([0, 1, 2, 3]))
    total, cross_entropy, quantization = paddle_side.loss(logits, h, labels, 0.1)
    mutated_total, *terms = GreedyHashSeams().reweighted_loss(paddle_side.loss, term, factor)(logits, h, labels, 0.1)
    weighted = {"cross_entropy": cross_entropy, "quantization": 0.1 * quantization}[term]
    np.testing.assert_allclose(mutated_total.numpy(), (total + (factor - 1) * weighted).numpy(), rtol=1e-12)
    np.testing.assert_array_equal(terms[0].numpy(), cross_entropy.numpy())


def test_a_pair_with_one_loss_value_has_it_reweighted_whole():
    logits, labels = paddle.to_tensor(np.random.default_rng(0).standard_normal((4, 10))), paddle.to_tensor([0, 1, 2, 3])
    loss = nn.functional.cross_entropy
    assert Seams().LOSS_TERMS == ("loss",)
    np.testing.assert_allclose(Seams().reweighted_loss(loss, "loss", -1.0)(logits, labels).numpy(),
                               -loss(logits, labels).numpy(), rtol=1e-15)


def _optimizer_of(name):
    operator = _operator(name)
    return operator.mutate(build_optimizer, operator.places(None, Seams())[0])(nn.Linear(2, 2), lr=1.0, decay_every=1)


def test_optimizer_operators_change_the_optimizer_or_its_schedule():
    optimizer, scheduler = build_optimizer(nn.Linear(2, 2), lr=1.0, decay_every=1)
    assert (optimizer._momentum, optimizer._use_nesterov, optimizer.get_lr()) == (0.9, False, 1.0)
    assert _optimizer_of("optimizer.momentum")[0]._momentum == pytest.approx(0.95)
    assert _optimizer_of("optimizer.nesterov")[0]._use_nesterov
    assert _optimizer_of("optimizer.weight_decay=0")[0].regularization is None
    assert _optimizer_of("schedule.one_epoch_early")[0].get_lr() == pytest.approx(0.1)
    late_optimizer, late_scheduler = _optimizer_of("schedule.one_epoch_late")
    late_scheduler.step()
    assert late_optimizer.get_lr() == 1.0
    late_scheduler.step()
    assert late_optimizer.get_lr() == pytest.approx(0.1)


@pytest.mark.parametrize("operator", operators.OPERATORS, ids=lambda operator: operator.name)
def test_installing_a_mutant_restores_every_seam_afterwards(operator):
    seams = [(paddle_side, "build_model"), (paddle_side, "loss"), (paddle_side, "optimizer_builder"),
             (paddle_side, "train_one_epoch"), (train_step, "greedyhash_loss")]
    before = [getattr(owner, name) for owner, name in seams]
    place = "alex.features.1" if operator.seam == operators.MODEL else operator.places(None, GreedyHashSeams())[0]
    with pytest.raises(RuntimeError):
        with installed(paddle_side, mutant_record(operator, place), GreedyHashSeams()):
            assert [getattr(owner, name) for owner, name in seams] != before
            raise RuntimeError("a failing step")
    assert [getattr(owner, name) for owner, name in seams] == before


def test_the_control_installs_nothing():
    before = paddle_side.build_model
    with installed(paddle_side, CONTROL, GreedyHashSeams()):
        assert paddle_side.build_model is before


def test_a_pair_without_a_product_loop_has_no_loop_mutant():
    loop = next(operator for operator in operators.OPERATORS if operator.seam == LOOP)
    assert loop.places(None, Seams()) == [] and loop.places(None, GreedyHashSeams()) == ["train_one_epoch"]


def test_a_loop_that_forgets_training_mode_leaves_the_model_in_eval_mode():
    seen = []
    model = EveryKind()
    model.eval()
    mutated = operators.OPERATORS[[op.name for op in operators.OPERATORS].index("loop.train_mode_forgotten")].mutate(
        lambda model: (model.train(), seen.append(model.training)))
    mutated(model)
    assert seen == [False] and model.train().training


def test_every_coverage_criterion_an_operator_needs_is_one_the_coverage_table_records():
    recorded = set()
    for name in os.listdir(os.path.join(PROJECT_ROOT, "logs", "reference", "coverage")):
        with open(os.path.join(PROJECT_ROOT, "logs", "reference", "coverage", name), encoding="utf-8") as handle:
            recorded.update(criterion for row in json.load(handle)["rows"] for criterion in row["criteria"])
    assert {operator.needs for operator in operators.OPERATORS if operator.needs} <= recorded


def _outcome(status, place="alex.features.1", operator="relu->relu6", needs="inputs beyond 6", **more):
    return {"id": f"{operator}@{place}", "operator": operator, "place": place, "seam": "model",
            "description": "d", "needs": needs, "not_viable": None, "status": status, "seconds": 1.0,
            "closest": {"step": "forward", "case": "seeded-224px", "key": "h", "excess": 0.01}, **more}


COVERAGE = [LayerCoverage("alex.features.1", "ReLU", {}, {}, {},
                          {"inputs beyond 6": [], "inputs of both signs": ["seeded-224px"]})]


def _summary(outcomes):
    mutants = [{key: outcome[key] for key in ("id", "operator", "place", "not_viable")} for outcome in outcomes]
    mutants.append({"id": "relu->gelu@x", "operator": "relu->gelu", "place": "x", "not_viable": "no forward at 64 px"})
    return score.summarize([{**CONTROL, "status": "survived"}, *outcomes], mutants, COVERAGE, {"bit": 48}, 3.0)


def test_the_score_counts_killed_over_killed_and_survived_and_sets_apart_the_rest():
    killed = _outcome("killed", by={"step": "forward", "case": "rescaled-224px", "key": "h", "excess": 5.0})
    survived = _outcome("survived", place="alex.features.4", probe_difference={
        "probe": "images x1000", "step": "forward", "case": "seeded-224px", "key": "h"},
        moved={"step": "forward", "case": "seeded-224px", "key": "h", "max_rel": 1e-13})
    equivalent = _outcome("equivalent", place="alex.features.7", why="identical")
    summary = _summary([killed, survived, equivalent])
    assert (summary["score"], summary["killed"], summary["survived"], summary["equivalent"],
            summary["not_viable"]) == (0.5, 1, 1, 1, 1)
    relu6 = next(op for op in summary["operators"] if op["name"] == "relu->relu6")
    assert (relu6["places"], relu6["killed"], relu6["survived"], relu6["equivalent"]) == (3, 1, 1, 1)
    assert not summary["control_failed"]
    why = summary["survivors"][0]["why"]
    assert "images x1000" in why and "moved forward seeded-224px h by 1e-13 (relative) at most, within tolerance" in why
    assert "mutation score 50.0%" in score.render_markdown(summary)


def test_a_survivor_is_explained_by_the_coverage_gap_of_its_layer():
    why = _summary([_outcome("survived")])["survivors"][0]["why"]
    assert "coverage gap: no case has inputs beyond 6 at alex.features.1" in why
    assert "every checked value is bit for bit the unmutated port's" in why


def test_a_probe_on_which_the_port_itself_overflows_tells_nothing():
    assert mutants_worker.all_finite({"logits": np.array([1.0, 2.0]), "labels": np.array([1, 2])})
    assert not mutants_worker.all_finite({"logits": np.array([1.0, np.nan])})


def test_the_largest_change_of_a_mutant_is_relative_to_the_unmutated_value():
    unmutated = {"h": np.array([2.0, -4.0]), "b": np.array([1.0, -1.0])}
    assert largest_change(unmutated, {"h": np.array([2.0, -4.0]), "b": np.array([1.0, -1.0])}) is None
    assert largest_change(unmutated, {"h": np.array([2.0, -3.0]), "b": np.array([1.0, 1.0])}) == ("b", 2.0)


@pytest.mark.parametrize("control", [{"status": "killed", "by": {"step": "forward"}},
                                     {"status": "survived", "moved": {"key": "h", "max_rel": 1e-16}}])
def test_a_control_that_fails_or_moves_a_value_fails_the_run(control):
    summary = score.summarize([{**CONTROL, **control}], [], [], {}, 1.0)
    assert summary["control_failed"] and "THE CONTROL FAILED" in score.score_line(summary)


def test_a_lower_score_than_the_reference_for_the_same_settings_is_a_failure(tmp_path):
    reference = tmp_path / "mutation.json"
    reference.write_text(json.dumps({"score": 0.9, "settings": {"bit": 48}}))
    assert score.compare_with_reference({"score": 0.8, "settings": {"bit": 48}}, str(reference))
    assert score.compare_with_reference({"score": 0.9, "settings": {"bit": 48}}, str(reference)) is None
    assert score.compare_with_reference({"score": 0.1, "settings": {"bit": 12}}, str(reference)) is None
    assert score.compare_with_reference({"score": 0.1, "settings": {"bit": 48}}, score.NO_REFERENCE) is None


@pytest.fixture(scope="module")
def seeded_64px_run(module_tmp):
    """The options of a run at the seeded weights and 64 px, its inputs prepared as the suite prepares them."""
    workdir = str(module_tmp("mutants"))
    write_input_batch(workdir, greedyhash, None, 4, (64,), greedyhash.WEIGHT_SETS)
    prepare_weights(48, 0, workdir, ("seeded",), pair=greedyhash)
    return argparse.Namespace(bit=48, workdir=workdir, weight_sets="seeded", sizes="64", bulk_size=64,
                              mask_seed=0, data=None, threads=1, model="greedyhash", pair=greedyhash,
                              steps="forward,loss,backward,optim,train")


@pytest.mark.slow
def test_probes_tell_a_survivor_from_the_port_and_none_tells_an_equivalent_mutant(seeded_64px_run, monkeypatch):
    """A ReLU applied twice is the port's function in another form: not identical, and no probe tells it
    apart. ReLU6 agrees at the seeded weights (no input beyond 6) but a probe tells it apart."""
    twice = operators.Operator(OperatorSpec("relu->relu,relu", MODEL, "a ReLU applied twice"),
                               lambda layer: type(layer) is nn.ReLU, lambda layer: nn.Sequential(nn.ReLU(), nn.ReLU()))
    monkeypatch.setitem(mutants_worker.OPERATOR_NAMED, twice.name, twice)
    equivalent, relu6 = (mutant_record(operator, "alex.classifier.5") for operator in (twice, _operator("relu->relu6")))
    with reusing_builds(paddle_side):
        assert not mutants_worker.identical_models(paddle_side, seeded_64px_run, equivalent)
        assert mutants_worker.probe_difference(paddle_side, seeded_64px_run, equivalent) is None
        found = mutants_worker.probe_difference(paddle_side, seeded_64px_run, relu6)
    assert found["step"] == "forward" and found["probe"] in ("weights perturbed", "images x1000")


def test_a_load_through_float32_is_killed_at_the_default_seeded_set(weights):
    """The seeded set is made in float64 below float32's precision (alignment.weight_sets): the unmutated port
    passes the float64 forward check on it, a layer loaded through float32 fails it, by name."""
    from .step_runner import check_both

    images = np.random.default_rng(0).standard_normal((2, 3, 64, 64))
    options = {"images": images, "labels": np.array([0, 1]), "size": 64}
    assert check_both("forward", weights, "float64", **options).passed
    with installed(paddle_side, mutant_record(_operator("weights.float32"), "fc_plus"), GreedyHashSeams()):
        result = check_both("forward", weights, "float64", **options)
    assert "h" in {key.name for key in result.keys if not key.passed}  # fc_plus's output


def run_mutants(workdir, *options):
    return subprocess.run([sys.executable, "-m", "alignment.mutation", "--workdir", str(workdir),
                           *options], cwd=PROJECT_ROOT, capture_output=True, text=True)


@pytest.mark.slow
def test_the_default_run_scores_at_least_the_committed_score(tmp_path):
    """What CI gates on: the default run (every mutant, the default cases) against logs/reference/mutants/."""
    with open(os.path.join(PROJECT_ROOT, score.reference_summary("greedyhash")), encoding="utf-8") as handle:
        reference = json.load(handle)
    done = run_mutants(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(tmp_path / "mutation.json", encoding="utf-8") as handle:
        summary = json.load(handle)
    assert summary["settings"] == reference["settings"]
    assert summary["score"] >= reference["score"] and not summary["control_failed"]
    assert summary["killed_by_a_failing_side"] == 0  # every kill is a check's verdict, not a crash


# Pairs other than GreedyHash whose committed score is a seeded sample (MAX=): CI reruns each sample
# (tests/test_mutants_of_other_pairs.py)
COMMITTED_SAMPLES = ("resnet18-torch-bn", "torch_mobilenet_v2")


BEFORE_SOUNDNESS = ["--steps", "forward,backward", "--weight-sets", "seeded", "--sizes", "224", "--operators",
                    "relu->relu6,adaptive_avg->adaptive_max", "--max", "2", "--sample-seed", "2"]


@pytest.mark.slow
def test_before_the_soundness_work_survivors_slip_through_coverage_gaps_and_the_gate_fails(tmp_path):
    """The configuration of the suite before its weight sets and sizes (seeded weights, 224 px only):
    ReLU6 and an adaptive max-pool survive, are not equivalent (a probe tells them apart), and the
    coverage gap of their layer explains each. Against a reference that caught them, the run fails.
    Both are model mutants, so the steps that run the model are enough to show it (the train step's 20
    iterations at 224 px would triple the run's time and tell nothing more)."""
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps({"score": 1.0, "settings": {
        "model": "greedyhash", "steps": "forward,backward", "bit": 48, "batch_size": 4, "seed": 0,
        "weight_sets": "seeded", "sizes": "224", "bulk_size": 64, "data": None, "weights": None,
        "operators": "relu->relu6,adaptive_avg->adaptive_max", "max": 2,
        "sample_seed": 2}}))
    done = run_mutants(tmp_path / "run", *BEFORE_SOUNDNESS, "--reference", str(reference))
    assert done.returncode == 1 and "below the committed 100.0%" in done.stderr, done.stdout[-3000:] + done.stderr
    with open(tmp_path / "run" / "mutation.json", encoding="utf-8") as handle:
        summary = json.load(handle)
    assert summary["survived"] == 2 and summary["score"] == 0.0
    for survivor in summary["survivors"]:
        assert "coverage gap: no case has" in survivor["why"] and survivor["probe_difference"]


@pytest.mark.parametrize("options, message", [
    (["--max", "0"], "--max must be at least 1"),
    (["--jobs", "0"], "--jobs must be at least 1"),
    (["--dtypes", "float32"], "mutants are checked in float64 only"),
    (["--bit", "13"], "--bit"),
    (["--operators", "relu->relu6,relu->relu7"], "unknown operators relu->relu7; choose from relu->leaky_relu,"),
])
def test_bad_options_are_refused_in_one_line_before_any_work(tmp_path, options, message):
    done = run_mutants(tmp_path / "run", *options)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_the_api_takes_a_pair_or_two_factories_and_checks_options_before_any_work(tmp_path):
    import alignment

    with pytest.raises(UserInputError, match="--max must be at least 1"):
        alignment.mutants("resnet18-torch-bn", max=0, workdir=str(tmp_path / "run"))
    with pytest.raises(UserInputError, match="unknown steps metric"):
        alignment.mutants(torch="torchvision.models:resnet18", paddle="paddle.vision.models:resnet18",
                          steps="forward,metric", workdir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_a_mutated_model_is_identical_only_when_every_setting_and_value_is():
    """The printed model leaves settings out (a max-pool's ceil_mode): identity compares every setting."""
    model = EveryKind()
    assert same_models(model, copy.deepcopy(model))
    for operator in MODEL_OPERATORS:
        for place in operator.places(model, Seams()):
            assert not same_models(model, mutate_model(copy.deepcopy(model), place, operator)), operator.name
    half = nn.Sequential(nn.Dropout(0.5))
    assert same_models(half, mutate_model(copy.deepcopy(half), "0", _operator("dropout.p=1-p")))


@pytest.mark.parametrize("content", [b"not json", b"\xff\xfe", b"[1, 2]", b'{"score": "high", "settings": {}}'])
def test_a_damaged_reference_is_refused_in_one_line_and_the_report_says_so(tmp_path, content):
    reference = tmp_path / "mutation.json"
    reference.write_bytes(content)
    with pytest.raises(UserInputError, match="not a mutation run's summary"):
        score.compare_with_reference({"score": 1.0, "settings": {}}, str(reference))
    assert score.reference_score_line(str(reference)).startswith("unreadable: ")


@pytest.mark.parametrize("pair", ("greedyhash", *COMMITTED_SAMPLES))
def test_a_committed_score_is_rerun_with_exactly_the_settings_it_records(pair):
    """make align-mutants-reference and the CI gates rerun a score from the options of its settings."""
    settings = committed_settings(pair)
    assert settings_of(mutants_run.get_args_parser().parse_args(options_of(settings))) == settings


def test_a_pair_with_no_committed_score_is_refused_in_one_line_naming_those_there_are():
    with pytest.raises(UserInputError, match="no committed mutation score nope.*committed: mutants, mutants-"):
        committed_settings("nope")


@pytest.mark.parametrize("name", ["../reference/mutants", "x/../../..", "..", ""])
def test_a_score_name_that_is_a_path_is_refused_before_any_folder_is_touched(name):
    with pytest.raises(UserInputError, match="give a committed score's name"):
        committed_settings(name)
