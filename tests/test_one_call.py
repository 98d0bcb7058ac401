"""Any torch model and its Paddle port in one call (alignment.align, python -m alignment --torch --paddle):
no pair written, the key map inferred, the suite's steps, checker and localization."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from alignment import known_differences
from alignment.diagnosis import DEFECT, KNOWN

from .conftest import PROJECT_ROOT

SIZE = 8


def torch_cnn(batch_norm=False):
    import torch.nn as nn
    # before a BatchNorm a bias has no effect and a gradient of exactly 0 (docs/tolerances.md): none
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=not batch_norm),
                         *([nn.BatchNorm2d(6)] if batch_norm else []), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 16, 10), nn.Linear(10, 10))


def paddle_cnn(batch_norm=False, activation="ReLU"):
    import paddle.nn as nn
    return nn.Sequential(nn.Conv2D(3, 6, 3, padding=1, bias_attr=None if batch_norm is False else False),
                         *([nn.BatchNorm2D(6)] if batch_norm else []),
                         getattr(nn, activation)(), nn.MaxPool2D(2), nn.Flatten(), nn.Linear(6 * 16, 10),
                         nn.Linear(10, 10))


def images():
    return 4 * np.random.default_rng(3).standard_normal((4, 3, SIZE, SIZE))  # beyond 6 after the convolution


def aligned(torch_model, paddle_model, tmp_path, **options):
    import alignment
    return alignment.align(torch_model, paddle_model, images(), np.array([1, 2, 3, 4]), dtypes=("float64",),
                           workdir=str(tmp_path), **options)


def test_two_models_align_in_one_call_with_nothing_written(tmp_path):
    result = aligned(torch_cnn(), paddle_cnn(), tmp_path)
    assert result.passed, result
    assert [row.step for row in result.rows] == ["forward", "loss", "backward", "optim", "train"]
    assert (tmp_path / "report.md").exists() and (tmp_path / "summary.json").exists()


def test_a_relu6_in_the_port_fails_and_the_layers_name_it(tmp_path):
    result = aligned(torch_cnn(), paddle_cnn(activation="ReLU6"), tmp_path, steps=("forward", "backward"))
    assert not result.passed and {row.step for row in result.failures()} == {"forward", "backward"}
    (localization,) = result.localizations.values()
    row, place = localization.trace("eval", "forward").divergence()
    assert row.layer == "1"  # the activation (after the convolution "0"), by the torch module's name


def test_a_loss_the_port_computes_otherwise_is_named_as_the_loss_function_not_the_model(tmp_path):
    """Paddle's cross-entropy with label smoothing: the forward check passes, the loss check names the loss."""
    import paddle.nn.functional as functional
    import torch.nn.functional as torch_functional
    losses = {"torch": torch_functional.cross_entropy,
              "paddle": lambda logits, labels: functional.cross_entropy(logits, labels, label_smoothing=0.1)}
    result = aligned(torch_cnn(), paddle_cnn(), tmp_path, steps=("forward", "loss"), loss=losses)
    forward, loss = result.rows
    assert forward.passed and not loss.passed and loss.kind == DEFECT
    assert "the Paddle side's loss function differs" in loss.findings[0].text()


def test_batch_norms_running_variance_is_the_only_difference_of_the_libraries(tmp_path):
    result = aligned(torch_cnn(batch_norm=True), paddle_cnn(batch_norm=True), tmp_path, steps=("forward", "backward"))
    (failed,) = result.failures()
    assert failed.step == "forward" and failed.worst_key == "train_buffer.1.running_var"


def relu6_cnn_scaled(scale):
    """torch_cnn with a ReLU6, its weights times `scale`: at 0.001 no activation reaches 6."""
    import torch
    import torch.nn as nn
    model = torch_cnn()
    model[1] = nn.ReLU6()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(scale)
    return model


def test_a_second_call_in_the_same_workdir_checks_its_own_models_weights_not_the_first_calls(tmp_path):
    """A run keeps its weight sets' .pth (alignment.suite.remove_conversions): a later call in the same workdir
    with another torch model must make its seeded set from that model. A port with a ReLU for the ReLU6
    passes at weights too small to reach 6, and must fail at the full weights."""
    assert aligned(relu6_cnn_scaled(0.001), paddle_cnn(), tmp_path, steps=("forward",), localize=False).passed
    result = aligned(relu6_cnn_scaled(1.0), paddle_cnn(), tmp_path, steps=("forward",), localize=False)
    assert not result.passed, "the second call checked the first call's weights"


def test_a_call_in_a_folder_of_its_own_leaves_its_report_and_not_its_weight_sets(tmp_path, monkeypatch):
    """No later call makes that temporary folder again: its weight sets (both layouts: ResNet-18's are 180 MB
    in float64) would fill the disk of a user who calls align in a loop."""
    import alignment
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where mkdtemp makes the call's folder
    result = alignment.align(torch_cnn(), paddle_cnn(), images(), np.array([1, 2, 3, 4]), dtypes=("float64",),
                             steps=("forward",), localize=False)
    assert result.passed and os.path.dirname(result.workdir) == str(tmp_path)
    assert os.path.exists(os.path.join(result.workdir, "report.md"))
    assert [name for name in os.listdir(os.path.join(result.workdir, "inputs")) if name.startswith("weights")] == []


def test_a_call_leaves_the_callers_random_streams_as_they_were(tmp_path):
    """Both sides run in the caller's process and seed their framework, the seeded set its own torch stream:
    a training script that checks its port between epochs must draw what it would have drawn without."""
    import random

    import paddle
    import torch

    def draws():
        return (random.random(), np.random.rand(), torch.rand(2).tolist(), paddle.rand([2]).tolist())

    def seeded():
        random.seed(123)
        np.random.seed(123)
        torch.manual_seed(123)
        paddle.seed(123)

    models = torch_cnn(), paddle_cnn()
    seeded()
    expected = draws()
    seeded()
    assert aligned(*models, tmp_path, steps=("forward", "train"), localize=False).passed
    assert draws() == expected


def test_the_cli_takes_two_factories_and_refuses_a_bad_one_in_one_line(tmp_path):
    def align_cli(*options):
        return subprocess.run([sys.executable, "-m", "alignment", "--torch", "tests.test_one_call:torch_cnn",
                               "--sizes", str(SIZE), "--dtypes", "float64", "--steps", "forward,backward",
                               "--no-profile", *options], cwd=PROJECT_ROOT, capture_output=True, text=True)

    done = align_cli("--paddle", "tests.test_one_call:paddle_cnn", "--workdir", str(tmp_path / "one"))
    assert done.returncode == 0 and "alignment passed: 2/2 checks" in done.stdout, done.stdout[-2000:] + done.stderr
    wrong = align_cli("--paddle", "tests.test_one_call:no_such_factory", "--workdir", str(tmp_path / "two"))
    assert wrong.returncode == 2 and wrong.stderr.strip().count("\n") == 0
    assert "has no callable no_such_factory" in wrong.stderr


@pytest.mark.slow
def test_two_interpreters_run_the_sides_in_their_own_processes_from_the_factories(tmp_path):
    """--paddle-python another interpreter: the Paddle side process resolves the spec at its entry and
    reads the key map the torch interpreter inferred (inputs/layout.json)."""
    other = tmp_path / "python"
    other.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    other.chmod(0o755)
    workdir = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "alignment", "--torch", "tests.test_one_call:torch_cnn", "--paddle",
                           "tests.test_one_call:paddle_cnn", "--paddle-python", str(other), "--sizes", str(SIZE),
                           "--dtypes", "float64", "--steps", "forward,backward", "--workdir", str(workdir),
                           "--no-profile"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and "alignment passed: 2/2 checks" in done.stdout, done.stdout[-2000:] + done.stderr
    assert (workdir / "inputs" / "layout.json").exists() and (workdir / "side_paddle.log").exists()


@pytest.mark.slow
def test_mobilenet_v2s_relu6_made_relu_is_the_headline_of_the_one_call_in_both_modes(tmp_path):
    """torchvision's and paddle.vision's MobileNetV2 through alignment.align, a ReLU planted for one ReLU6 of the
    Paddle model (benchmarks.planted_defects, the figures' own case), on a checkpoint with trained-like
    BatchNorm scales (ReLU6 clamps in eval mode too). About 35 s on the 2-core machine (float64, 64 px,
    forward and backward, localized)."""
    from benchmarks.planted_defects import align_defect, mobilenet_v2_checkpoint, relu6_coverage

    result = align_defect("relu6 -> relu", str(tmp_path / "run"), mobilenet_v2_checkpoint(str(tmp_path / "w.pth")))
    assert not result.passed
    (localization,) = result.localizations.values()
    for mode in ("eval", "train"):
        for direction in ("forward", "backward"):
            row, _ = localization.trace(mode, direction).divergence()
            assert (row.layer, row.types, row.operator) == ("features.3.conv.1.2", "ReLU6 / ReLU", "relu6 vs relu"), \
                (mode, direction, row.layer)
    forward = next(row for row in result.rows if row.step == "forward")
    assert forward.kind == "defect" and forward.line().startswith(
        "forward user-64px float64: FAIL; DEFECT: first divergence at features.3.conv.1.2 (ReLU6 / ReLU: relu6 vs relu;")
    # coverage counts training mode: ReLU6 layers whose input passes 6 only there are covered
    coverage = relu6_coverage(result)
    assert coverage["beyond_6_in_eval"] < coverage["beyond_6_in_training"] == coverage["relu6_layers"], coverage
    assert coverage["reported_not_covered"] == 0, coverage


def conv_norm_relu6(framework, activation="ReLU6"):
    """A convolution, a BatchNorm and a ReLU6 (MobileNetV2's block), then a classifier, with the zoo's BatchNorm
    corrections (alignment.zoo), so that the two frameworks' models align; the Paddle one's activation given."""
    from alignment.zoo import batch_norm_epsilon_in_float32, batch_norm_statistics_as_torch

    if framework == "torch":
        import torch.nn as nn
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
        batch_norm_epsilon_in_float32(model, None)
        return model
    import paddle.nn as nn
    model = nn.Sequential(nn.Conv2D(3, 8, 3, padding=1, bias_attr=False), nn.BatchNorm2D(8), getattr(nn, activation)(),
                          nn.AdaptiveAvgPool2D(1), nn.Flatten(), nn.Linear(8, 10))
    batch_norm_statistics_as_torch(None, model)
    return model


@pytest.mark.filterwarnings("ignore:When training, we now always track global mean and variance")
def test_the_rescaled_set_proposed_to_a_pair_without_one_fails_a_relu6_left_out_that_seeded_weights_pass(tmp_path):
    """At the seeded weights no ReLU6 input reaches 6: a port with a ReLU there passes forward. The rescaled set
    the suite proposes (weight_sets=("seeded", "rescaled"): alignment/pairs/rescaling.py) fails it. (The seeded
    set is the torch model's own initialization: each is built after the same seed.)"""
    import alignment
    import torch

    options = {"steps": ("forward",), "dtypes": ("float64",), "sizes": (64,), "localize": False,
               "weight_sets": ("seeded", "rescaled")}
    torch.manual_seed(0)
    assert alignment.align(conv_norm_relu6("torch"), conv_norm_relu6("paddle"), workdir=str(tmp_path / "port"),
                           **options).passed
    torch.manual_seed(0)
    result = alignment.align(conv_norm_relu6("torch"), conv_norm_relu6("paddle", "ReLU"),
                             workdir=str(tmp_path / "relu"), **options)
    assert {row.case.label: row.passed for row in result.rows} == {"seeded-64px": True, "rescaled-64px": False}
    assert next(row for row in result.rows if not row.passed).worst_key in ("logits", "train_logits")


# -- Inception v3's branch pools: torch's functional 3x3 average pool (padding counted), Paddle's layer -----


def torch_inception_block(planted_pool=None):
    """A block as torchvision's Inception v3 writes it: the pool reads the block's input, which a branch
    convolution reads too; in-place functional ReLUs; dropout before the flatten."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.branch = nn.Conv2d(3, 4, 1)
            self.pool_conv = nn.Conv2d(3, 4, 1)
            self.dropout = nn.Dropout(0.5)
            self.fc = nn.Linear(8, 10)

        def forward(self, x):
            branch = F.relu(self.branch(x), inplace=True)
            pooled = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1)
            pooled = F.relu(self.pool_conv(pooled), inplace=True)
            out = F.adaptive_avg_pool2d(torch.cat([branch, pooled], 1), (1, 1))
            return self.fc(torch.flatten(self.dropout(out), 1))

    return Block()


def paddle_inception_block(exclusive=False, pool_activation="ReLU"):
    """paddle.vision's way: AvgPool2D layers, the reshape before the dropout."""
    import paddle
    import paddle.nn as nn

    class Block(nn.Layer):
        def __init__(self):
            super().__init__()
            self.branch = nn.Conv2D(3, 4, 1)
            self.branch_relu = nn.ReLU()
            self.pool = nn.AvgPool2D(kernel_size=3, stride=1, padding=1, exclusive=exclusive)
            self.pool_conv = nn.Conv2D(3, 4, 1)
            self.pool_relu = getattr(nn, pool_activation)()
            self.average = nn.AdaptiveAvgPool2D(1)
            self.dropout = nn.Dropout(0.5)
            self.fc = nn.Linear(8, 10)

        def forward(self, x):
            branch = self.branch_relu(self.branch(x))
            pooled = self.pool_relu(self.pool_conv(self.pool(x)))
            out = self.average(paddle.concat([branch, pooled], 1))
            return self.fc(self.dropout(paddle.reshape(out, [-1, 8])))

    return Block()


def only_failure(result):
    (failed,) = result.failures()
    (finding,) = failed.findings
    return failed, finding


def test_paddles_average_pool_gradient_in_an_inception_block_is_named_at_the_pool(tmp_path):
    result = aligned(torch_inception_block(), paddle_inception_block(), tmp_path, steps=("forward", "backward"))
    failed, finding = only_failure(result)
    assert failed.label == "backward seeded-8px float64" and finding.kind == KNOWN
    assert finding.reason.startswith("average-pool gradient precision at <avg_pool2d>:")
    assert "float32(1/9)" in finding.reason  # the window's 9 values, the padding counted
    (localization,) = result.localizations.values()
    assert localization.paddle_only == []  # the functional pool pairs; Paddle's reshape is a relayout
    # the in-place ReLU's input gradient is its own, not its output's
    assert all(row.computes.passed for trace in localization.traces_of("backward") for row in trace.rows
               if "relu" in row.types.lower())


def test_the_zoos_average_pool_correction_makes_the_inception_block_align(tmp_path):
    from alignment.zoo import average_pool_gradient_as_torch

    paddle_model = paddle_inception_block()
    average_pool_gradient_as_torch(None, paddle_model)
    result = aligned(torch_inception_block(), paddle_model, tmp_path, steps=("forward", "backward"))
    assert result.passed and not any(row.findings for row in result.rows), [row.line() for row in result.rows]


def test_a_pool_that_leaves_the_padding_out_is_a_defect_named_at_the_pool(tmp_path):
    # Paddle's exclusive=True against torch's count_include_pad=True: not the library's float32(1/n)
    result = aligned(torch_inception_block(), paddle_inception_block(exclusive=True), tmp_path,
                     steps=("forward", "backward"))
    assert {row.step for row in result.failures()} == {"forward", "backward"}
    for failed in result.failures():
        (finding,) = failed.findings
        assert finding.kind == DEFECT and "first divergence at <avg_pool2d>" in finding.reason, failed.line()


def test_a_defect_planted_beside_the_pool_is_named_at_its_layer(tmp_path):
    result = aligned(torch_inception_block(), paddle_inception_block(pool_activation="LeakyReLU"), tmp_path,
                     steps=("forward", "backward"))
    for failed in result.failures():
        (finding,) = failed.findings
        assert finding.kind == DEFECT and "first divergence at <relu>#2 (relu / LeakyReLU: relu vs leakyrelu" in finding.reason, failed.line()
    assert {row.step for row in result.failures()} == {"forward", "backward"}


def test_the_correction_leaves_a_pool_that_leaves_the_padding_out_as_it_is():
    import paddle

    from alignment.zoo import average_pool_gradient_as_torch

    paddle_model = paddle_inception_block(exclusive=True)  # its windows count 4 to 9 values: no one factor
    average_pool_gradient_as_torch(None, paddle_model)
    assert type(paddle_model.pool) is paddle.nn.AvgPool2D


# -- SqueezeNet's head: an adaptive average pool to 1x1 over a 3x3 map (n = 9, float32(1/9) not exact) -------


def torch_pooled_head():
    import torch.nn as nn
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 10))


def paddle_pooled_head(activation="ReLU", corrected=False):
    import paddle.nn as nn

    from alignment.zoo import average_pool_gradient_as_torch

    model = nn.Sequential(nn.Conv2D(3, 4, 3, stride=2), getattr(nn, activation)(), nn.AdaptiveAvgPool2D(1),
                          nn.Flatten(), nn.Linear(4, 10))
    if corrected:
        average_pool_gradient_as_torch(None, model)
    return model


def test_an_adaptive_average_pools_gradient_is_named_at_the_pool(tmp_path):
    result = aligned(torch_pooled_head(), paddle_pooled_head(), tmp_path, steps=("forward", "backward"))
    failed, finding = only_failure(result)
    assert failed.label == "backward seeded-8px float64" and finding.kind == KNOWN, failed.line()
    assert finding.reason.startswith("average-pool gradient precision at 2:") and "float32(1/9)" in finding.reason


def test_the_zoos_average_pool_correction_makes_an_adaptive_pool_to_one_value_align(tmp_path):
    result = aligned(torch_pooled_head(), paddle_pooled_head(corrected=True), tmp_path,
                     steps=("forward", "backward"))
    assert result.passed and not any(row.findings for row in result.rows), [row.line() for row in result.rows]


def test_a_defect_planted_beside_a_corrected_adaptive_pool_is_named_at_its_layer(tmp_path):
    result = aligned(torch_pooled_head(), paddle_pooled_head("LeakyReLU", corrected=True), tmp_path,
                     steps=("forward", "backward"))
    assert {row.step for row in result.failures()} == {"forward", "backward"}
    for failed in result.failures():
        (finding,) = failed.findings
        assert finding.kind == DEFECT, failed.line()
        assert "first divergence at 1 (ReLU / LeakyReLU: relu vs leakyrelu" in finding.reason, failed.line()


def pool_input_gradient(pool, size):
    import paddle

    inputs = paddle.to_tensor(np.random.default_rng(0).standard_normal((1, 2, size, size)), stop_gradient=False)
    pool(inputs).sum().backward()
    return inputs.grad.numpy()


def test_the_zoo_applies_the_correction_where_a_pools_windows_count_n_values_not_a_power_of_two():
    import paddle

    from alignment.zoo import CORRECTIONS, average_pool_gradient_as_torch

    def applies(model, size):  # the zoo's test of whether the correction applies to a model at a size
        when = next(when for _, when, correct in CORRECTIONS if correct is average_pool_gradient_as_torch)
        return when(("family", "torch", "paddle", {}, size), model)

    assert applies(paddle_pooled_head(), 8)  # a 3x3 map: one window of 9 values
    assert not applies(paddle_pooled_head(), 10)  # a 4x4 map: 1/16 is exact in float32
    assert not applies(paddle.nn.AdaptiveAvgPool2D(3), 5)  # windows of 2, 3 and 2 values a side


def test_the_correction_leaves_other_layers_and_pools_whose_windows_differ_as_they_are():
    import paddle

    from alignment.zoo import average_pool_gradient_as_torch

    head = paddle_pooled_head(corrected=True)
    assert type(head[1]) is paddle.nn.ReLU and type(head[2]) is not paddle.nn.AdaptiveAvgPool2D
    assert type(head[2]).__name__ == "AdaptiveAvgPool2D"  # Paddle's name: it pairs with torch's pool
    maximum = paddle.nn.AdaptiveMaxPool2D(1)
    average_pool_gradient_as_torch(None, maximum)
    assert type(maximum) is paddle.nn.AdaptiveMaxPool2D
    uneven, corrected = paddle.nn.AdaptiveAvgPool2D(3), paddle.nn.AdaptiveAvgPool2D(3)
    average_pool_gradient_as_torch(None, corrected)
    # 5 values a side in 3 windows of 2, 3 and 2: no one factor, the gradient Paddle's own
    assert np.array_equal(pool_input_gradient(corrected, 5), pool_input_gradient(uneven, 5))
    # 9 values a side in 3 windows of 3: each window of 9 values back-propagates torch's 1/9, not float32(1/9)
    assert np.allclose(pool_input_gradient(corrected, 9), 1 / 9, rtol=1e-15, atol=0)
    assert not np.allclose(pool_input_gradient(uneven, 9), 1 / 9, rtol=1e-15, atol=0)


# -- ShuffleNetV2's BatchNorms: Paddle's float32 epsilon within each layer's limit, beyond the check's -------

DEEP_BLOCKS, DEEP_WIDTH, DEEP_WEIGHT_SCALE = 24, 8, 0.25


def deep_batch_norm_chain(framework, epsilons=None):
    """Convolution, BatchNorm and ReLU DEEP_BLOCKS times, as ShuffleNetV2's branches: torch's with its
    convolutions' initial weights times DEEP_WEIGHT_SCALE (BatchNorm inputs of a small variance, next to which
    float32(1e-5) - 1e-5 shows by about 1e-11, within a layer's limit of 1e-10); `epsilons` {block: Paddle's
    epsilon}."""
    if framework == "torch":
        import torch
        import torch.nn as nn

        torch.manual_seed(0)
        conv, norm, relu, pool = nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.AdaptiveAvgPool2d
    else:
        import paddle.nn as nn

        conv, norm, relu, pool = nn.Conv2D, nn.BatchNorm2D, nn.ReLU, nn.AdaptiveAvgPool2D
    layers = []
    for block in range(DEEP_BLOCKS):
        options = ({"bias": False} if framework == "torch" else
                   {"bias_attr": False}), ({} if framework == "torch" else {"epsilon": (epsilons or {}).get(block, 1e-5)})
        layers += [conv(3 if block == 0 else DEEP_WIDTH, DEEP_WIDTH, 3, padding=1, **options[0]),
                   norm(DEEP_WIDTH, **options[1]), relu()]
    model = nn.Sequential(*layers, pool(1), nn.Flatten(), nn.Linear(DEEP_WIDTH, 10))
    if framework == "torch":
        with torch.no_grad():
            for layer in model[:-3:3]:
                layer.weight.mul_(DEEP_WEIGHT_SCALE)
    return model


def deep_chain_backward(tmp_path, epsilons=None, scaled_layer=None):
    """The float64 backward check of deep_batch_norm_chain and its localization (about 3 s): Paddle's
    BatchNorms with `epsilons`; `scaled_layer`: a Paddle layer whose output is scaled by 1 + 1e-6 (a planted
    defect)."""
    paddle_model = deep_batch_norm_chain("paddle", epsilons)
    if scaled_layer is not None:
        paddle_model[scaled_layer].register_forward_post_hook(lambda layer, inputs, output: output * (1 + 1e-6))
    result = aligned(deep_batch_norm_chain("torch"), paddle_model, tmp_path, steps=("backward",))
    (backward,), (localization,) = result.rows, result.localizations.values()
    return backward, localization


@pytest.mark.slow
def test_paddles_float32_epsilon_added_up_over_batch_norms_each_within_its_limit_is_named(tmp_path):
    """ShuffleNetV2's case, about 3 s: fed torch's values, every layer agrees within its limit; the chain's
    gradients differ beyond it from the 24th BatchNorm (the first in backward order) on."""
    backward, localization = deep_chain_backward(tmp_path)
    assert localization.differing_alone() == []  # within each layer's limit: the case this names
    (finding,) = backward.findings
    assert not backward.passed and finding.kind == KNOWN, backward.line()
    # the chain's BatchNorms, of the forward pass the gradients run back through, to the 24th (70)
    assert finding.reason.startswith("BatchNorm epsilon precision at 4, 7, 10 and 20 more: ")
    assert finding.reason.endswith(known_differences.ACCUMULATED.format(layers="70"))


@pytest.mark.slow
@pytest.mark.parametrize("planted", [dict(epsilons={5: 1e-3}), dict(scaled_layer=30)],
                         ids=["one BatchNorm's epsilon 1e-3", "a convolution's output scaled"])
def test_a_defect_among_batch_norms_of_paddles_float32_epsilon_is_named_at_its_layer(tmp_path, planted):
    """About 3 s each: an epsilon that really differs (1e-3 vs 1e-5, Inception v3's) and a planted defect in
    a convolution are defects at their layer, not Paddle's float32 epsilon."""
    backward, _ = deep_chain_backward(tmp_path, **planted)
    layer = "16" if "epsilons" in planted else "30"
    assert [finding.kind for finding in backward.findings] == [DEFECT], backward.line()
    assert backward.findings[0].reason.startswith(f"first divergence at {layer} "), backward.line()
