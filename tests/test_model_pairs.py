"""Model-pair adapters (alignment.pairs): the seam proven on a tiny pair defined here, and ResNet-18 from
torchvision and paddle.vision, where the two libraries differ and where the correction aligns them."""
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from alignment.cases import WEIGHTS
from alignment.check import check_step
from alignment.layers.localize import compare_records
from alignment.layers.worker import record_side
from alignment.pairs import pair_named
from alignment.pairs.base import ModelPair
from alignment.paths import images_path, labels_path
from alignment.sides import paddle_layers, torch_layers
from alignment.steps import StepContext, check_values, steps_of
from alignment.tolerances import Tolerance
from alignment.weight_sets import SEEDED, below_float32
from greedyhash_common.infra.errors import UserInputError
from greedyhash_common.state_dicts.layout import Layout
from greedyhash_common.state_dicts.paddle_files import read_paddle_state, write_paddle_state
from torch_impl.torch_files import read_torch_state, write_torch_state
from weights_convert.convert import paddle_to_torch, torch_to_paddle

from .conftest import PROJECT_ROOT

TINY = "tests.test_model_pairs:TinyPair"
TINY_SIZE = 4  # images of 3 x 4 x 4: 48 inputs
HIDDEN = 16


class LoadedWeights:
    """A step of the tiny pair's own, defined here as a pair's own step is (OWN_STEPS): every parameter as
    each side loaded it, in torch's layout, bit for bit. It names a conversion defect by its tensor where
    the forward step can only name the outputs."""
    USES = (WEIGHTS,)
    TOLERANCES = {dtype: [("*", Tolerance(atol=0.0, rtol=0.0))] for dtype in ("float32", "float64")}

    @staticmethod
    def run(side, context):
        model = side.build_model(context.bit, context.dtype, context.weights)
        return {"param." + name: value for name, value in side.parameter_values(model).items()}


class TinyPair(ModelPair):
    """A pair defined in the test itself: an MLP with LayerNorm and GELU, whose square Linear keeps its
    shape when a transpose is forgotten, with data, a batch size and a step of its own. Nothing of it is
    in alignment/: the base class gives the loss (cross-entropy), the optimizer (the project's SGD) and the
    sides."""
    NAME = "tiny-mlp"
    STEPS = ("weights", "forward", "loss", "backward", "optim", "train")
    OWN_STEPS = {"weights": LoadedWeights}
    OUTPUTS = ("logits",)
    WEIGHT_SETS = (SEEDED,)
    DEFAULT_SIZES = (TINY_SIZE,)
    SMALLEST_IMAGE_SIZE = TINY_SIZE
    BATCH_SIZE = 6
    OPTIMIZER = {"lr": 0.1, "decay_every": 2, "momentum": 0.9, "weight_decay": 1e-4}
    EPOCHS = 4
    TORCH_SHAPES = {"1.weight": (HIDDEN, 3 * TINY_SIZE * TINY_SIZE), "1.bias": (HIDDEN,), "2.weight": (HIDDEN,),
                    "2.bias": (HIDDEN,), "4.weight": (HIDDEN, HIDDEN), "4.bias": (HIDDEN,), "5.weight": (10, HIDDEN),
                    "5.bias": (10,)}

    def input_batch(self, data, count, sizes):
        """Standard normal inputs and cycling labels, not CIFAR-10."""
        if data:
            raise UserInputError("the tiny pair has its own data: no --data")
        generator = np.random.default_rng(1)
        return ({size: generator.standard_normal((count, 3, size, size)) for size in sizes},
                np.arange(count, dtype=np.int64) * 3 % 10)

    def build(self, framework):
        if framework == "torch":
            import torch.nn as nn
            return nn.Sequential(nn.Flatten(), nn.Linear(48, HIDDEN), nn.LayerNorm(HIDDEN), nn.GELU(),
                                 nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, 10))
        import paddle.nn as nn
        return nn.Sequential(nn.Flatten(), nn.Linear(48, HIDDEN), nn.LayerNorm(HIDDEN), nn.GELU(),
                             nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, 10))

    def layout(self, state=None, framework=None):
        return Layout("tiny-mlp", {key: key for key in TinyPair.TORCH_SHAPES}, ("1.weight", "4.weight", "5.weight"),
                      TinyPair.TORCH_SHAPES)

    def make_weight_set(self, bit, seed, workdir, weight_set, source=None):
        from alignment.paths import weights_path
        write_weights(seed, weights_path(workdir, bit, weight_set, ".pth"),
                      weights_path(workdir, bit, weight_set, ".pdparams"))


def write_weights(seed, torch_file, paddle_file, layout=None):
    """Seeded torch weights of the tiny pair in both layouts (LayerNorm's affine drawn, not 1 and 0)."""
    import torch
    torch.manual_seed(seed)
    state = {key: value.numpy().copy() for key, value in TinyPair().build("torch").state_dict().items()}
    generator = np.random.default_rng(seed)
    state["2.weight"] = generator.uniform(0.5, 2, HIDDEN).astype(np.float32)
    state["2.bias"] = generator.uniform(-1, 1, HIDDEN).astype(np.float32)
    write_torch_state(state, torch_file)
    write_paddle_state(torch_to_paddle(state, torch_file, layout or TinyPair().layout())[0], paddle_file)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    files = (str(folder / "tiny.pth"), str(folder / "tiny.pdparams"))
    write_weights(0, *files)
    images, labels = TinyPair().input_batch(None, 4, (TINY_SIZE,))
    return types.SimpleNamespace(files=files, images=images[TINY_SIZE], labels=labels, folder=folder)


def context(pair, weights_file, images, labels, dtype, size):
    return StepContext(0, dtype, weights_file, images, labels, 0, image_size=size, pair=pair,
                       learning_rate=pair.OPTIMIZER["lr"])


def run_pair_step(pair, step, files, images, labels, dtype="float64", paddle_side=None, size=TINY_SIZE):
    """The StepResult of `step` of a pair (a ModelPair or its name), both sides in this process, the Paddle
    side replaceable."""
    pair = pair_named(pair) if isinstance(pair, str) else pair
    module = steps_of(pair)[step]
    torch_values = module.run(pair.side("torch"), context(pair, files[0], images, labels, dtype, size))
    paddle_values = module.run(paddle_side or pair.side("paddle"), context(pair, files[1], images, labels, dtype, size))
    return check_values(step, dtype, torch_values, paddle_values, pair)


def failing(result):
    return sorted(key.name for key in result.keys if not key.passed)


def with_paddle_model(pair_name, change):
    """The pair's Paddle side whose models are changed by change(model) after they are built."""
    side = pair_named(pair_name).side("paddle")
    build = side.build_model

    def build_changed(*args):
        model = build(*args)
        change(model)
        return model
    return types.SimpleNamespace(**{**vars(side), "build_model": build_changed})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("step", TinyPair.STEPS)
def test_every_step_runs_and_passes_on_a_pair_defined_in_a_test(tiny, step, dtype):
    result = run_pair_step(TINY, step, tiny.files, tiny.images, tiny.labels, dtype)
    assert result.passed, failing(result)
    assert result.keys


def test_weights_below_float32_load_with_their_bits_in_float64_and_rounded_alike_in_float32(tiny, tmp_path):
    """A made set's values no float32 holds (alignment.weight_sets.below_float32): each side loads them in the
    run's precision, the reference keeping every bit in float64."""
    state = below_float32(read_torch_state(tiny.files[0]), 0)
    files = (str(tmp_path / "tiny.pth"), str(tmp_path / "tiny.pdparams"))
    write_torch_state(state, files[0])
    write_paddle_state(torch_to_paddle(state, files[0], TinyPair().layout())[0], files[1])
    for dtype in ("float32", "float64"):
        result = run_pair_step(TINY, "weights", files, tiny.images, tiny.labels, dtype)
        assert result.passed, failing(result)
    side = TinyPair().side("torch")
    loaded = side.parameter_values(side.build_model(0, "float64", files[0]))
    assert all(np.array_equal(value, state[key]) for key, value in loaded.items()), "the reference lost bits"


def test_a_tanh_gelu_in_the_tiny_port_fails_forward_and_the_layers_name_it(tiny):
    def tanh_gelu(model):
        model[3]._approximate = True
    plant = with_paddle_model(TINY, tanh_gelu)
    assert "logits" in failing(run_pair_step(TINY, "forward", tiny.files, tiny.images, tiny.labels, paddle_side=plant))

    contexts = [context(TinyPair(), file, tiny.images, tiny.labels, "float64", TINY_SIZE) for file in tiny.files]
    reference, reference_alone = record_side(TinyPair().side("torch"), torch_layers, contexts[0], {})
    port, isolated = record_side(plant, paddle_layers, contexts[1], {}, reference)
    localization = compare_records("float64", reference, port, isolated, TinyPair(), reference_isolated=reference_alone)
    forward = localization.trace("eval", "forward")
    row, place = forward.divergence()
    assert (row.layer, place) == ("3", "at") and forward.isolated_failures() == ["3"]


def test_layer_records_streamed_into_archives_hold_what_memory_holds(tiny, tmp_path):
    """The layer sides write their records a mode (and a layer alone) at a time, never holding them all. (The
    Paddle side's units run alone: the torch side keeps none of this sequential model's, its chained values
    standing for them.)"""
    torch_context, paddle_context = (context(TinyPair(), file, tiny.images, tiny.labels, "float64", TINY_SIZE)
                                     for file in tiny.files)
    reference, _ = record_side(TinyPair().side("torch"), torch_layers, torch_context, {})
    side = TinyPair().side("paddle")
    kept, kept_alone = record_side(side, paddle_layers, paddle_context, {}, reference)
    paths = (str(tmp_path / "layers_paddle.npz"), str(tmp_path / "layers_isolated_paddle.npz"))
    written, written_alone = record_side(side, paddle_layers, paddle_context, {}, reference, paths=paths)
    assert written.layers == kept.layers
    for in_memory, in_archive in ((kept.values, written.values), (kept_alone, written_alone)):
        assert sorted(in_memory) == sorted(in_archive) and len(in_memory) > 20
        for key, value in in_memory.items():
            np.testing.assert_array_equal(in_archive[key], value)


def test_a_layer_side_that_fails_midway_leaves_no_archive(tiny, tmp_path):
    """The eval pass is written when the training pass fails: the half-written archive must not remain."""
    def failing_train(model):
        def train():
            raise RuntimeError("planted: the training pass fails")
        model.train = train
    side = with_paddle_model(TINY, failing_train)
    paddle_context = context(TinyPair(), tiny.files[1], tiny.images, tiny.labels, "float64", TINY_SIZE)
    with pytest.raises(RuntimeError, match="planted"):
        record_side(side, paddle_layers, paddle_context, {}, paths=(str(tmp_path / "a.npz"), str(tmp_path / "b.npz")))
    assert os.listdir(tmp_path) == []


def test_a_forgotten_transpose_of_a_square_weight_fails_forward_naming_nothing_else(tiny, tmp_path):
    """4.weight is 16 x 16: the shape check cannot see it, the values do."""
    untransposed = TinyPair().layout()
    untransposed = Layout(untransposed.kind, untransposed.key_map, ("1.weight", "5.weight"), untransposed.torch_shapes)
    files = (str(tmp_path / "t.pth"), str(tmp_path / "p.pdparams"))
    write_weights(0, *files, layout=untransposed)
    result = run_pair_step(TINY, "forward", files, tiny.images, tiny.labels)
    assert failing(result) == ["logits", "train_logits"]
    assert failing(run_pair_step(TINY, "weights", files, tiny.images, tiny.labels, "float32")) == ["param.4.weight"]


def test_a_step_of_a_pairs_own_without_tolerances_is_refused_by_name(tiny):
    """The suite's table has no float32 tolerance for a step it does not know: no silent default."""
    class Untolerated(LoadedWeights):
        TOLERANCES = {}

    class Pair(TinyPair):
        OWN_STEPS = {"weights": Untolerated}
    values = Untolerated.run(TinyPair().side("torch"), context(Pair(), tiny.files[0], tiny.images, tiny.labels,
                                                                "float32", TINY_SIZE))
    with pytest.raises(UserInputError, match=r"no float32 tolerance for weights/param\.1\.weight: give the step's"):
        check_values("weights", "float32", values, values, Pair())


def test_a_pair_that_runs_a_step_nobody_defines_is_refused_in_one_line():
    class Pair(TinyPair):
        STEPS = ("forward", "weight")
    with pytest.raises(UserInputError, match=r"tiny-mlp runs weight: neither the suite's steps \(forward, loss,"):
        steps_of(Pair())


def test_the_pair_options_reach_every_process_and_a_wrong_pair_is_one_line(tiny, tmp_path):
    """The suite as users run it, on the tiny pair: every process takes the pair from --model, and the
    batch is the pair's own data at its own batch size."""
    workdir = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "alignment", "--model", TINY, "--workdir", str(workdir),
                           "--bulk-size", "4", "--no-profile"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "alignment passed: 12/12 checks" in done.stdout
    images, labels = TinyPair().input_batch(None, TinyPair.BATCH_SIZE, (TINY_SIZE,))
    np.testing.assert_array_equal(np.load(images_path(str(workdir), TINY_SIZE)), images[TINY_SIZE])
    np.testing.assert_array_equal(np.load(labels_path(str(workdir))), labels)
    with_data = subprocess.run([sys.executable, "-m", "alignment", "--model", TINY, "--workdir", str(workdir),
                                "--data", str(tmp_path)], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert with_data.returncode == 2 and with_data.stderr.strip() == "error: the tiny pair has its own data: no --data"
    wrong = subprocess.run([sys.executable, "-m", "alignment", "--model", "alexnet"], cwd=PROJECT_ROOT,
                           capture_output=True, text=True)
    assert wrong.returncode == 2 and wrong.stderr.strip().count("\n") == 0
    assert "choose from greedyhash, resnet18, resnet18-torch-bn, resnet50" in wrong.stderr


@pytest.mark.parametrize("name, batch_norms", [("resnet18", 20), ("resnet50", 53)])
def test_the_resnet_key_rule_matches_both_libraries(name, batch_norms):
    pair = pair_named(name)
    layout = pair.layout()
    shapes = {framework: {key: tuple(value.shape) for key, value in pair.build(framework).state_dict().items()}
              for framework in ("torch", "paddle")}
    assert shapes["torch"] == layout.torch_shapes
    assert shapes["paddle"] == layout.paddle_shapes()
    assert len(layout.dropped_torch_keys) == batch_norms and all(key.endswith("num_batches_tracked")
                                                                 for key in layout.dropped_torch_keys)


@pytest.fixture(scope="module")
def resnet_weights(tmp_path_factory):
    from alignment.paths import weights_path
    workdir = str(tmp_path_factory.mktemp("resnet18"))
    os.makedirs(os.path.join(workdir, "inputs"))
    pair_named("resnet18").make_weight_set(0, 0, workdir, SEEDED)
    return weights_path(workdir, 0, SEEDED, ".pth"), weights_path(workdir, 0, SEEDED, ".pdparams")


def test_resnet18_conversion_round_trips_bit_exactly(resnet_weights, tmp_path):
    torch_state, paddle_state = read_torch_state(resnet_weights[0]), read_paddle_state(resnet_weights[1])
    layout = pair_named("resnet18").layout()
    back, _ = paddle_to_torch(torch_to_paddle(torch_state, "t", layout)[0], "p", layout)
    assert back.keys() == torch_state.keys()
    for key, value in torch_state.items():
        if key in layout.dropped_torch_keys:
            assert back[key] == 0 and back[key].dtype == np.int64  # Paddle keeps no counter
        else:
            assert back[key].dtype == value.dtype and np.array_equal(back[key], value), key
    again, _ = torch_to_paddle(paddle_to_torch(paddle_state, "p", layout)[0], "t", layout)
    assert again.keys() == paddle_state.keys()
    assert all(np.array_equal(again[key], value) and again[key].dtype == value.dtype
               for key, value in paddle_state.items())
    assert np.array_equal(paddle_state["fc.weight"], torch_state["fc.weight"].T)
    assert np.array_equal(paddle_state["layer2.0.downsample.1._variance"],
                          torch_state["layer2.0.downsample.1.running_var"])


@pytest.fixture(scope="module")
def resnet_batch():
    images = np.random.default_rng(2).standard_normal((4, 3, 33, 33))
    return images, np.array([1, 4, 6, 8])


def test_resnet18_batch_norm_running_variance_differs_and_the_correction_aligns_it(resnet_weights, resnet_batch):
    """The libraries' real difference, found in float64 and named by layer and tensor: every BatchNorm's
    running variance (torch adds the unbiased batch variance) and running mean (Paddle's momentum in
    float32); what the training pass computes agrees."""
    result = run_pair_step("resnet18", "forward", resnet_weights, *resnet_batch, size=33)
    failed = failing(result)
    assert failed and all(key.startswith("train_buffer.") for key in failed)
    assert "train_buffer.layer4.0.downsample.1.running_var" in failed and "train_buffer.bn1.running_mean" in failed
    worst = max((key for key in result.keys if not key.passed), key=lambda key: key.max_rel)
    assert worst.name.endswith("running_var") and worst.max_rel > 1e-2  # layer4: 4 images x 2 x 2, n / (n - 1) = 16 / 15
    corrected = run_pair_step("resnet18-torch-bn", "forward", resnet_weights, *resnet_batch, size=33)
    assert corrected.passed, failing(corrected)


@pytest.mark.slow
def test_resnet18_every_other_step_agrees_in_float64(resnet_weights, resnet_batch):
    for step in ("loss", "backward", "optim"):
        result = run_pair_step("resnet18", step, resnet_weights, *resnet_batch, size=33)
        assert result.passed, (step, failing(result))
    train = run_pair_step("resnet18", "train", resnet_weights, *resnet_batch, size=33)
    assert failing(train) and all(".buffer." in key for key in failing(train))
    assert run_pair_step("resnet18-torch-bn", "train", resnet_weights, *resnet_batch, size=33).passed


def test_a_resnet18_port_with_paddles_default_momentum_is_caught_by_the_corrected_pair(resnet_weights, resnet_batch):
    """The corrected pair does not hide BatchNorm defects: momentum 0.2 instead of torch's 0.1."""
    from alignment.pairs.resnet18_torch_bn import ResNet18TorchBN

    class WrongMomentum(ResNet18TorchBN):
        MOMENTUM = 0.2
    plant = WrongMomentum().side("paddle")
    failed = failing(run_pair_step("resnet18-torch-bn", "forward", resnet_weights, *resnet_batch, paddle_side=plant,
                                   size=33))
    assert "train_buffer.bn1.running_mean" in failed and "train_buffer.bn1.running_var" in failed


def test_paddles_cross_entropy_caps_a_sample_at_64_and_the_loss_check_names_it():
    """A difference of the libraries' losses: Paddle's cross_entropy (and log_softmax) stops at a
    log-probability of -64; torch's does not. Seen by the loss step's comparison once a sample's margin
    passes 64."""
    torch_side, paddle_side = (pair_named("resnet18").side(framework) for framework in ("torch", "paddle"))
    logits = np.zeros((2, 10))
    logits[:, 1] = [30.0, 100.0]  # the second sample's true class 0 is 100 below class 1
    labels = np.array([0, 0])
    values = {side.NAME: {key: side.numpy(term) for key, term in pair_named("resnet18").loss_terms(
        side, {"logits": side.tensor(logits)}, side.tensor(labels)).items()} for side in (torch_side, paddle_side)}
    assert float(values["torch"]["loss_total"]) == pytest.approx(65.0)
    assert float(values["paddle"]["loss_total"]) == pytest.approx(47.0)  # (30 + 64) / 2
    assert failing(check_step("loss", "float64", values["torch"], values["paddle"])) == ["loss_total"]


@pytest.mark.slow
def test_make_align_model_resnet18_fails_on_the_running_statistics_and_passes_corrected(tmp_path):
    runs = {}
    for model in ("resnet18", "resnet18-torch-bn"):
        runs[model] = subprocess.run([sys.executable, "-m", "alignment", "--model", model, "--workdir",
                                      str(tmp_path / model), "--sizes", "33", "--bulk-size", "33"],
                                     cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert runs["resnet18"].returncode == 1
    with open(tmp_path / "resnet18" / "summary.json", encoding="utf-8") as handle:
        failed = [row for row in json.load(handle)["steps"] if not row["passed"]]
    assert {(row["step"], row["dtype"]) for row in failed} == {("forward", "float32"), ("forward", "float64"),
                                                                ("train", "float64")}
    assert all(row["worst_key"].endswith(".running_var") for row in failed)
    assert runs["resnet18-torch-bn"].returncode == 0, runs["resnet18-torch-bn"].stdout[-3000:]
    assert "alignment passed: 9/9 checks" in runs["resnet18-torch-bn"].stdout
    # no bit length, no CIFAR-10 split (GreedyHash's): what a ResNet run's inputs hold
    inputs = sorted(os.listdir(tmp_path / "resnet18" / "inputs"))
    assert "weights_seeded.pth" in inputs and not [name for name in inputs if "bit" in name or "split" in name]


def test_the_converter_cli_converts_per_pair_and_refuses_another_pairs_file(resnet_weights, weights, tmp_path):
    def convert(*arguments):
        return subprocess.run([sys.executable, "-m", "weights_convert", *map(str, arguments)], cwd=PROJECT_ROOT,
                              capture_output=True, text=True)

    done = convert("torch2paddle", resnet_weights[0], tmp_path / "r.pdparams", "--model", "resnet18")
    assert done.returncode == 0 and "resnet18, 102 tensors, transposed: fc.weight" in done.stdout, done.stderr
    assert "no Paddle counterpart (20 keys)" in done.stdout
    converted, expected = read_paddle_state(str(tmp_path / "r.pdparams")), read_paddle_state(resnet_weights[1])
    assert converted.keys() == expected.keys() and all(np.array_equal(converted[key], expected[key]) for key in expected)
    refused = convert("torch2paddle", weights[0], tmp_path / "g.pdparams", "--model", "resnet18")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "missing keys" in refused.stderr
    assert not (tmp_path / "g.pdparams").exists()


def test_a_resnet18_checkpoint_of_either_framework_is_a_weight_set(resnet_weights, tmp_path):
    """--weights for a pair other than GreedyHash: the user set, converted strictly through the pair's layout."""
    from alignment.paths import weights_path
    from alignment.weight_sets import USER

    for source in resnet_weights:
        workdir = tmp_path / os.path.basename(source)
        (workdir / "inputs").mkdir(parents=True)
        pair_named("resnet18").make_weight_set(0, 0, str(workdir), USER, source)
        written = read_paddle_state(weights_path(str(workdir), 0, USER, ".pdparams"))
        original = read_paddle_state(resnet_weights[1])
        assert all(np.array_equal(written[key], original[key]) for key in original)
        assert read_torch_state(weights_path(str(workdir), 0, USER, ".pth")).keys() == read_torch_state(
            resnet_weights[0]).keys()


def test_a_resnet50_checkpoint_is_its_user_weight_set(tmp_path):
    """WEIGHTS= for resnet50: its make_weight_set is resnet18's, inherited, and reads the user's file."""
    import torch

    from alignment.paths import weights_path
    from alignment.weight_sets import USER

    pair = pair_named("resnet50")
    state = {key: value.numpy() for key, value in pair.build("torch").state_dict().items()}
    state["fc.bias"] = np.arange(10, dtype=np.float32)
    source = str(tmp_path / "mine.pth")
    torch.save({key: torch.from_numpy(value) for key, value in state.items()}, source)
    (tmp_path / "inputs").mkdir()
    pair.make_weight_set(0, 0, str(tmp_path), USER, source)
    written = read_paddle_state(weights_path(str(tmp_path), 0, USER, ".pdparams"))
    assert np.array_equal(written["fc.bias"], state["fc.bias"])
    assert np.array_equal(written["layer4.2.bn3._variance"], state["layer4.2.bn3.running_var"])


def test_a_pair_is_a_model_pair_subclass_and_every_process_is_told_which():
    class NotAPair:
        NAME = "x"
    sys.modules[__name__].NotAPair = NotAPair
    try:
        with pytest.raises(UserInputError, match="has no ModelPair subclass NotAPair"):
            pair_named(f"{__name__}:NotAPair")
    finally:
        del sys.modules[__name__].NotAPair
    done = subprocess.run([sys.executable, "-m", "alignment.worker", "torch", "--bit", "0", "--workdir", "x"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "--model" in done.stderr  # never a silent GreedyHash


def test_a_pair_without_codes_takes_no_bit_length_and_its_files_name_none(tmp_path):
    """--bit is GreedyHash's (checked against its code lengths, 48 by default); a pair without hash codes refuses
    one, and its weight files carry no bit length."""
    from alignment.paths import weights_path
    from alignment.suite import get_args_parser, resolved_options

    def bit_of(*arguments):
        return resolved_options(get_args_parser().parse_args([*arguments, "--workdir", str(tmp_path)]))[0].bit

    assert (bit_of("--model", "resnet18"), bit_of(), bit_of("--bit", "12")) == (0, 48, 12)
    with pytest.raises(UserInputError, match="--bit 48: the resnet18 pair has no hash codes"):
        bit_of("--model", "resnet18", "--bit", "48")
    with pytest.raises(UserInputError, match="--bit 13: the code length must be one of 12, 24, 32, 48"):
        bit_of("--bit", "13")
    assert [os.path.basename(weights_path(str(tmp_path), bit, SEEDED, ".pth")) for bit in (0, 48)] == [
        "weights_seeded.pth", "weights_bit48_seeded.pth"]


@pytest.mark.slow
def test_greedyhash_builds_the_products_models_whose_keys_its_key_map_names():
    """GreedyHashPair.build: torch_impl's and paddle_impl's model (the base requires it); its keys are the key
    map's, torch's on one side, Paddle's on the other. Slow tier: initializing two AlexNets, 5-15 s."""
    from alignment.pairs.greedyhash import GREEDYHASH

    key_map = GREEDYHASH.key_map()
    assert list(GREEDYHASH.build("torch").state_dict()) == list(key_map)
    assert sorted(GREEDYHASH.build("paddle").state_dict()) == sorted(key_map.values())
