"""Every failing key gets one class (alignment.diagnosis): each class produced here by a planted case, the
library differences by the libraries' own layers run side by side in this process, small and in float64."""
import dataclasses
import functools
import warnings

import numpy as np
import pytest

from alignment import known_differences
from alignment.cases import Case
from alignment.check import ZERO_REFERENCE, StepResult, check_step, compare_arrays
from alignment.diagnosis import DEFECT, KNOWN, ROUNDING, Finding, loss_finding
from alignment.known_differences import Evidence
from alignment.layers.localize import LayerRow, Localization, Record, Trace
from alignment.tolerances import NEAR_EXACT, Tolerance
from alignment.verdict import StepVerdict, float64_checks_needed, verdicts

CASE = Case("seeded", 8)
CHANNELS, BATCH, SIZE = 3, 4, 5


@pytest.fixture(scope="module")
def torch():
    import torch

    return torch


@pytest.fixture(scope="module")
def paddle():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import paddle
    return paddle


def images(seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal((BATCH, CHANNELS, SIZE, SIZE)) * scale + 0.3


def checked(step, dtype, torch_values, paddle_values, invariants=()):
    result = check_step(step, dtype, torch_values, paddle_values, invariants=invariants)
    result.case = CASE
    return result


def evidence(torch_values=None, paddle_values=None, initial=None, layers=None, torch_alone=None):
    return Evidence(lambda dtype, case, step: (torch_values, paddle_values), lambda case: initial,
                    lambda dtype, case: layers, torch_alone and (lambda dtype, case: torch_alone))


def only_finding(result, localizations=None, run_evidence=None, float64=()):
    verdict, = verdicts([result], localizations or {}, run_evidence, float64)
    assert not verdict.passed or verdict.as_rounding
    finding, = verdict.findings
    return verdict, finding


# -- known library differences, of the keys ------------------------------------------------------------


def batch_norm_buffers(torch, paddle, paddle_momentum=None, corrected=False):
    """{key: array} of torch's and Paddle's BatchNorm2d buffers after one training pass from the same
    statistics, and those statistics by torch name."""
    torch_layer = torch.nn.BatchNorm2d(CHANNELS).double()
    paddle_layer = paddle.nn.BatchNorm2D(CHANNELS, **({"momentum": paddle_momentum} if paddle_momentum else {}))
    paddle_layer.to(dtype="float64")
    old_mean, old_var = np.linspace(-0.5, 0.5, CHANNELS), np.linspace(0.5, 2.0, CHANNELS)
    with torch.no_grad():
        torch_layer.running_mean.copy_(torch.from_numpy(old_mean))
        torch_layer.running_var.copy_(torch.from_numpy(old_var))
    paddle_layer._mean.set_value(old_mean)
    paddle_layer._variance.set_value(old_var)
    if corrected:
        from alignment.pairs.resnet18_torch_bn import update_batch_norm_as_torch

        update_batch_norm_as_torch(paddle.nn.Sequential(paddle_layer))  # it hooks the layers inside a model
    torch_layer.train()(torch.from_numpy(images()))
    paddle_layer.train()
    paddle_layer(paddle.to_tensor(images()))
    torch_values = {"train_buffer.bn.running_mean": torch_layer.running_mean.numpy(),
                    "train_buffer.bn.running_var": torch_layer.running_var.numpy()}
    paddle_values = {"train_buffer.bn.running_mean": paddle_layer._mean.numpy(),
                     "train_buffer.bn.running_var": paddle_layer._variance.numpy()}
    return torch_values, paddle_values, {"bn.running_mean": old_mean, "bn.running_var": old_var}


def test_batch_norm_running_variance_and_momentum_precision_are_named_with_their_corrections(torch, paddle):
    torch_values, paddle_values, initial = batch_norm_buffers(torch, paddle)
    result = checked("forward", "float64", torch_values, paddle_values)
    verdict, = verdicts([result], {}, evidence(torch_values, paddle_values, initial))
    assert not verdict.passed and verdict.kind == KNOWN
    reasons = {finding.reason: finding.keys for finding in verdict.findings}
    count = BATCH * SIZE * SIZE
    variance = known_differences.RUNNING_VARIANCE.format(value=count)
    assert reasons[variance] == ("train_buffer.bn.running_var",)
    precision, = [reason for reason in reasons if reason.startswith("BatchNorm momentum precision")]
    assert "correction: a momentum exact in float32" in precision
    assert "KNOWN LIBRARY DIFFERENCE: BatchNorm running variance" in verdict.line()


def test_a_momentum_copied_across_conventions_is_named(torch, paddle):
    torch_values, paddle_values, initial = batch_norm_buffers(torch, paddle, paddle_momentum=0.1)
    verdict, = verdicts([checked("forward", "float64", torch_values, paddle_values)], {},
                        evidence(torch_values, paddle_values, initial))
    convention, = [finding for finding in verdict.findings if finding.reason.startswith("BatchNorm momentum convention")]
    assert "factor 0.1111" in convention.reason and "Paddle's momentum = 1 - torch's" in convention.reason
    assert set(convention.keys) == set(torch_values)


def test_float32_rounding_of_the_running_statistics_is_no_momentum_difference(torch, paddle):
    """Inception v3 corrected, in float32: its running means' updates agree to float32's rounding (ratio 1 up to
    about 1e-5), which is neither a momentum convention nor Paddle's float32 momentum."""
    torch_values, _, initial = batch_norm_buffers(torch, paddle, corrected=True)
    noise = 1 + np.random.default_rng(0).uniform(-5e-5, 5e-5, CHANNELS)
    paddle_values = {key: (initial[key.split(".", 1)[1]] + (value - initial[key.split(".", 1)[1]]) * noise)
                     for key, value in torch_values.items()}
    as_float32 = [{key: value.astype(np.float32) for key, value in values.items()}
                  for values in (torch_values, paddle_values)]
    result = checked("forward", "float32", *as_float32)
    found = known_differences.of_keys(result, sorted(torch_values), evidence(*as_float32, initial))
    assert not [reason for reason, _ in found if reason.startswith("BatchNorm momentum")], found
    planted = {key: initial[key.split(".", 1)[1]] + (value - initial[key.split(".", 1)[1]]) / 9
               for key, value in torch_values.items()}  # torch's 0.1 as Paddle's share: 0.1 / 0.9
    found = known_differences.of_keys(result, sorted(torch_values), evidence(torch_values, planted, initial))
    assert [reason for reason, _ in found if reason.startswith("BatchNorm momentum convention")], found


def test_the_documented_correction_leaves_nothing_to_diagnose(torch, paddle):
    torch_values, paddle_values, _ = batch_norm_buffers(torch, paddle, corrected=True)
    assert checked("forward", "float64", torch_values, paddle_values).passed


def test_running_statistics_no_library_difference_explains_are_a_defect(torch, paddle):
    torch_values, paddle_values, initial = batch_norm_buffers(torch, paddle)
    paddle_values["train_buffer.bn.running_var"] = paddle_values["train_buffer.bn.running_var"] * [1.0, 1.5, 0.7]
    verdict, = verdicts([checked("forward", "float64", torch_values, paddle_values)], {},
                        evidence(torch_values, paddle_values, initial))
    assert verdict.kind == DEFECT and "train_buffer.bn.running_var" in verdict.findings[0].keys


def step_lr_rates(torch, base=0.045, gamma=0.1, epochs=9, every=3):
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=base)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, every, gamma)
    rates = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(epochs):
            rates.append(optimizer.param_groups[0]["lr"])
            scheduler.step()
    closed_form = [base * gamma ** (epoch // every) for epoch in range(epochs)]
    return {"lr_per_epoch": np.array(rates), "lr_reference": np.array(closed_form)}


def test_steplr_against_its_closed_form_is_named_not_failed_as_a_defect(torch):
    values = step_lr_rates(torch)
    result = checked("optim", "float64", values, dict(values), invariants=(("lr_per_epoch", "lr_reference"),))
    assert not result.passed
    _, finding = only_finding(result, run_evidence=evidence(values, values))
    assert finding.kind == KNOWN and finding.keys == ("lr_per_epoch == lr_reference (torch)",
                                                      "lr_per_epoch == lr_reference (paddle)")
    assert finding.reason.startswith("StepLR's closed form") and " ulp; correction" in finding.reason


def test_a_schedule_off_by_more_than_ulps_is_a_defect(torch):
    values = step_lr_rates(torch)
    shifted = {**values, "lr_per_epoch": values["lr_per_epoch"] * (1 + 1e-9)}
    result = checked("optim", "float64", values, shifted)
    _, finding = only_finding(result, run_evidence=evidence(values, shifted))
    assert finding.kind == DEFECT and finding.keys == ("lr_per_epoch",)


# -- known library differences, of the layers the localization finds -------------------------------------


def localized(layer, layer_type, mode, torch_output, paddle_output, tol=NEAR_EXACT):
    """A Localization of one layer in `mode` whose output, fed torch's input, is `paddle_output`."""
    agree = compare_arrays("in", np.ones(1), np.ones(1), tol)
    computed = compare_arrays(f"{mode}.{layer}.output", torch_output, paddle_output, tol)
    row = LayerRow(layer, layer_type, agree, computed, computed)
    traces = [Trace(trace_mode, direction, [row if trace_mode == mode else LayerRow(layer, layer_type, agree, agree, agree)])
              for trace_mode in ("eval", "train") for direction in ("forward", "backward")]
    return Localization("float64", traces, [], CASE)


def layer_evidence(layer, mode, fed, torch_output, paddle_output, initial=None, operator=None):
    record = Record({mode: [{"name": layer, "inputs": [None], "operator": operator or {}}]},
                    {f"{mode}.{layer}.input": fed, f"{mode}.{layer}.output": torch_output}, {})
    return evidence(initial=initial or {}, layers=(record, {f"{mode}.{layer}.output": paddle_output}))


def forward_failure():
    result = checked("forward", "float64", {"logits": np.ones(2)}, {"logits": np.array([1.0, 2.0])})
    return result


def test_paddles_downscale_in_infer_dropout_is_named_from_its_eval_output(torch, paddle):
    fed = images()
    torch_output = torch.nn.Dropout(0.3).eval()(torch.from_numpy(fed)).numpy()
    paddle_layer = paddle.nn.Dropout(0.3, mode="downscale_in_infer")
    paddle_layer.eval()
    paddle_output = paddle_layer(paddle.to_tensor(fed)).numpy()
    localization = localized("classifier.0", "Dropout", "eval", torch_output, paddle_output)
    _, finding = only_finding(forward_failure(), {("float64", CASE): localization},
                              layer_evidence("classifier.0", "eval", fed, torch_output, paddle_output))
    assert finding.kind == KNOWN
    assert finding.reason == known_differences.DROPOUT_MODE.format(layer="classifier.0", scale=0.7, p=0.3)


@pytest.mark.parametrize("kind", ["ceil_mode", "padding"])
def test_an_output_shape_that_differs_at_a_pool_or_convolution_is_named(torch, paddle, kind):
    fed = np.random.default_rng(1).standard_normal((1, 3, 8, 8))
    if kind == "ceil_mode":
        torch_layer, paddle_layer = torch.nn.MaxPool2d(3, 2, ceil_mode=True), paddle.nn.MaxPool2D(3, 2, ceil_mode=False)
        layer_type, expected = "MaxPool2d", "max-pool ceil_mode at features.2: fed the same input, torch gives 4x4, Paddle 3x3"
    else:
        torch_layer, paddle_layer = torch.nn.Conv2d(3, 4, 3, padding=0).double(), paddle.nn.Conv2D(3, 4, 3, padding=1)
        paddle_layer.to(dtype="float64")
        layer_type, expected = "Conv2d", "convolution padding at features.2: fed the same input, torch gives 6x6, Paddle 8x8"
    with torch.no_grad():
        torch_output = torch_layer(torch.from_numpy(fed)).numpy()
    paddle_output = paddle_layer(paddle.to_tensor(fed)).numpy()
    localization = localized("features.2", layer_type, "eval", torch_output, paddle_output)
    _, finding = only_finding(forward_failure(), {("float64", CASE): localization}, evidence())
    assert finding.kind == KNOWN and finding.reason.startswith(expected)
    assert ("(ceil_mode True in torch); correction: Paddle's ceil_mode=True" in finding.reason) == (kind == "ceil_mode")


def batch_norm_finding(torch, paddle, torch_epsilon, paddle_epsilon):
    fed = images(scale=1e-3)  # a variance of 1e-6, next to which float32(epsilon) - epsilon shows
    torch_layer = torch.nn.BatchNorm2d(CHANNELS, eps=torch_epsilon).double().train()
    torch_output = torch_layer(torch.from_numpy(fed)).detach().numpy()
    paddle_layer = paddle.nn.BatchNorm2D(CHANNELS, epsilon=paddle_epsilon)
    paddle_layer.to(dtype="float64")
    paddle_layer.train()
    paddle_output = paddle_layer(paddle.to_tensor(fed)).numpy()
    localization = localized("features.1", "BatchNorm2d", "train", torch_output, paddle_output)
    assert not localization.traces[2].passed
    return only_finding(forward_failure(), {("float64", CASE): localization},
                        layer_evidence("features.1", "train", fed, torch_output, paddle_output,
                                       operator={"eps": torch_epsilon}))[1]


@pytest.mark.parametrize("epsilon", [1e-5, 1e-3])  # the default; torchvision's MobileNetV3's
def test_paddles_float32_batch_norm_epsilon_in_float64_is_named(torch, paddle, epsilon):
    finding = batch_norm_finding(torch, paddle, epsilon, epsilon)
    assert finding.kind == KNOWN
    assert finding.reason == known_differences.BATCH_NORM_EPSILON.format(layer="features.1", epsilon=epsilon)


def test_a_batch_norm_epsilon_that_differs_is_a_defect_not_its_precision(torch, paddle):
    """Inception v3's case: torchvision's epsilon 0.001, paddle.vision's 1e-5."""
    assert batch_norm_finding(torch, paddle, 1e-3, 1e-5).kind == DEFECT


def gradient_finding(layer_type, fed, output_gradient, torch_gradient, paddle_gradient, operator=None,
                     chained_gradient=None):
    """The finding of a failing backward check whose one training-mode layer's output agrees and whose input
    gradient, fed torch's values, is `paddle_gradient`; `chained_gradient`: torch's gradient of that input in
    the whole model when other layers read it too (then `torch_gradient` is the layer's own share, run alone)."""
    agree = compare_arrays("in", np.ones(1), np.ones(1), NEAR_EXACT)
    computed = compare_arrays("train.grad.features.1.input", torch_gradient, paddle_gradient, NEAR_EXACT)
    assert not computed.passed
    rows = {"forward": LayerRow("features.1", layer_type, agree, agree, agree),
            "backward": LayerRow("features.1", layer_type, agree, computed, computed)}
    localization = Localization("float64", [Trace("train", direction, [row]) for direction, row in rows.items()], [],
                                CASE)
    record = Record({"train": [{"name": "features.1", "inputs": [None], "operator": operator or {}}]},
                    {"train.features.1.input": fed, "train.features.1.output": fed,
                     "train.grad.features.1.output": output_gradient,
                     "train.grad.features.1.input": torch_gradient if chained_gradient is None else chained_gradient},
                    {})
    failure = checked("backward", "float64", {"grad.w": np.ones(2)}, {"grad.w": np.array([1.0, 2.0])})
    layers = (record, {"train.features.1.output": fed, "train.grad.features.1.input": paddle_gradient})
    torch_alone = None if chained_gradient is None else {"train.grad.features.1.input": torch_gradient}
    return only_finding(failure, {("float64", CASE): localization},
                        evidence(initial={}, layers=layers, torch_alone=torch_alone))[1]


def batch_norm_gradient_finding(torch, paddle, torch_epsilon, paddle_epsilon):
    """A training-mode BatchNorm whose output agrees and whose input gradient differs fed torch's values."""
    fed, output_gradient = images(scale=1e-3), images(seed=1)
    torch_inputs = torch.from_numpy(fed).requires_grad_()
    torch.nn.BatchNorm2d(CHANNELS, eps=torch_epsilon).double().train()(torch_inputs).backward(
        torch.from_numpy(output_gradient))
    paddle_layer = paddle.nn.BatchNorm2D(CHANNELS, epsilon=paddle_epsilon)
    paddle_layer.to(dtype="float64")
    paddle_layer.train()
    paddle_inputs = paddle.to_tensor(fed, stop_gradient=False)
    paddle_layer(paddle_inputs).backward(paddle.to_tensor(output_gradient))
    return gradient_finding("BatchNorm2d", fed, output_gradient, torch_inputs.grad.numpy(), paddle_inputs.grad.numpy(),
                            {"eps": torch_epsilon})


def average_pool_gradients(torch, paddle):
    """torch's and Paddle's input gradients of an average pool over 13 x 13 values (1/169 is not exact in
    float32), and the input and output gradient."""
    fed = np.random.default_rng(2).standard_normal((2, CHANNELS, 13, 13))
    output_gradient = np.random.default_rng(3).standard_normal((2, CHANNELS, 1, 1))
    torch_inputs = torch.from_numpy(fed).requires_grad_()
    torch.nn.AdaptiveAvgPool2d(1)(torch_inputs).backward(torch.from_numpy(output_gradient))
    paddle_inputs = paddle.to_tensor(fed, stop_gradient=False)
    paddle.nn.AdaptiveAvgPool2D(1)(paddle_inputs).backward(paddle.to_tensor(output_gradient))
    return fed, output_gradient, torch_inputs.grad.numpy(), paddle_inputs.grad.numpy()


def test_paddles_float32_average_pool_gradient_is_named(torch, paddle):
    finding = gradient_finding("AdaptiveAvgPool2d", *average_pool_gradients(torch, paddle))
    assert finding.kind == KNOWN
    assert finding.reason == known_differences.AVERAGE_POOL_GRADIENT.format(layer="features.1", count=169)


def test_an_average_pool_gradient_off_by_more_than_float32s_one_over_n_is_a_defect(torch, paddle):
    fed, output_gradient, torch_gradient, paddle_gradient = average_pool_gradients(torch, paddle)
    finding = gradient_finding("AdaptiveAvgPool2d", fed, output_gradient, torch_gradient, paddle_gradient * (1 + 1e-6))
    assert finding.kind == DEFECT


def window_pool_gradients(torch, paddle, size):
    """torch's and Paddle's input gradients of Inception v3's branch pool (3 x 3 windows, padding 1 counted:
    torch's count_include_pad=True, Paddle's exclusive=False) of a size x size map, the input and output
    gradient."""
    fed = np.random.default_rng(2).standard_normal((2, CHANNELS, size, size))
    output_gradient = np.random.default_rng(3).standard_normal((2, CHANNELS, size, size))
    torch_inputs = torch.from_numpy(fed).requires_grad_()
    torch.nn.functional.avg_pool2d(torch_inputs, 3, 1, 1).backward(torch.from_numpy(output_gradient))
    paddle_inputs = paddle.to_tensor(fed, stop_gradient=False)
    paddle.nn.AvgPool2D(3, 1, 1, exclusive=False)(paddle_inputs).backward(paddle.to_tensor(output_gradient))
    return fed, output_gradient, torch_inputs.grad.numpy(), paddle_inputs.grad.numpy()


@pytest.mark.parametrize("size", [5, 1])  # 1: Inception v3's last blocks at 80 px, one window of 9 (8 padding)
def test_paddles_float32_average_pool_gradient_is_named_for_windows_of_nine(torch, paddle, size):
    finding = gradient_finding("avg_pool2d / AvgPool2D", *window_pool_gradients(torch, paddle, size))
    assert finding.kind == KNOWN
    assert finding.reason == known_differences.AVERAGE_POOL_GRADIENT.format(layer="features.1", count=9)


def test_a_window_pools_gradient_off_by_more_than_float32s_one_over_n_is_a_defect(torch, paddle):
    fed, output_gradient, torch_gradient, paddle_gradient = window_pool_gradients(torch, paddle, 5)
    finding = gradient_finding("avg_pool2d / AvgPool2D", fed, output_gradient, torch_gradient,
                               paddle_gradient * (1 + 1e-6))
    assert finding.kind == DEFECT


def test_a_pool_whose_input_other_layers_read_is_named_from_its_own_share(torch, paddle):
    # Inception's pools read their block's input, which its branch convolutions read too: torch's gradient
    # of that input in the model is the sum of every branch's; the pool's own share is its gradient run alone
    fed, output_gradient, torch_gradient, paddle_gradient = window_pool_gradients(torch, paddle, 5)
    other_branches = np.random.default_rng(4).standard_normal(torch_gradient.shape)
    finding = gradient_finding("avg_pool2d / AvgPool2D", fed, output_gradient, torch_gradient, paddle_gradient,
                               chained_gradient=torch_gradient + other_branches)
    assert finding.kind == KNOWN and finding.reason.startswith("average-pool gradient precision at features.1:")


def test_paddles_float32_batch_norm_epsilon_is_named_from_the_gradient_when_the_output_agrees(torch, paddle):
    finding = batch_norm_gradient_finding(torch, paddle, 1e-3, 1e-3)
    assert finding.kind == KNOWN
    assert finding.reason == known_differences.BATCH_NORM_EPSILON.format(layer="features.1", epsilon=1e-3)


def test_a_batch_norm_gradient_of_another_epsilon_is_a_defect(torch, paddle):
    assert batch_norm_gradient_finding(torch, paddle, 1e-3, 1e-5).kind == DEFECT


def hardsigmoid_outputs(torch, paddle, paddle_layer):
    fed = images(scale=3.0)  # inputs on both sides of the clips at -3 and 3
    torch_output = torch.nn.Hardsigmoid()(torch.from_numpy(fed)).numpy()
    return fed, torch_output, paddle_layer(paddle.to_tensor(fed)).numpy()


def hardsigmoid_finding(fed, torch_output, paddle_output):
    localization = localized("features.1.block.2.scale_activation", "Hardsigmoid", "train", torch_output,
                             paddle_output)
    return only_finding(forward_failure(), {("float64", CASE): localization},
                        layer_evidence("features.1.block.2.scale_activation", "train", fed, torch_output,
                                       paddle_output))[1]


def test_paddles_hardsigmoid_formula_is_named_and_both_libraries_back_propagate_float32_one_sixth(torch, paddle):
    fed, torch_output, paddle_output = hardsigmoid_outputs(torch, paddle, paddle.nn.Hardsigmoid())
    finding = hardsigmoid_finding(fed, torch_output, paddle_output)
    assert finding.kind == KNOWN
    assert finding.reason == known_differences.HARDSIGMOID.format(layer="features.1.block.2.scale_activation")
    # the gradients, in float64: Paddle's slope, and torch's float32(1/6), not 1/6 (MobileNetV3's 3.7e-8)
    torch_inputs = torch.tensor([0.3, -1.2, 2.5], dtype=torch.float64, requires_grad=True)
    torch.nn.functional.hardsigmoid(torch_inputs).sum().backward()
    paddle_inputs = paddle.to_tensor([0.3, -1.2, 2.5], dtype="float64", stop_gradient=False)
    paddle.nn.Hardsigmoid()(paddle_inputs).sum().backward()
    assert set(torch_inputs.grad.numpy()) == {known_differences.TORCH_HARDSIGMOID_GRADIENT} != {1 / 6}
    assert set(paddle_inputs.grad.numpy()) == {known_differences.PADDLE_HARDSIGMOID_SLOPE}


def test_a_hardsigmoid_of_another_slope_is_a_defect_not_the_library_difference(torch, paddle):
    """Keras's hard sigmoid (slope 0.2) planted for the Hardsigmoid: not Paddle's formula."""
    keras_slope = functools.partial(paddle.nn.functional.hardsigmoid, slope=0.2)
    fed, torch_output, paddle_output = hardsigmoid_outputs(torch, paddle, keras_slope)
    assert hardsigmoid_finding(fed, torch_output, paddle_output).kind == DEFECT


def test_the_zoos_hardsigmoid_correction_computes_torchs_forward_with_the_shared_gradient(torch, paddle):
    from alignment.zoo import hardsigmoid_as_torch

    model = paddle.nn.Sequential(paddle.nn.Hardsigmoid())
    hardsigmoid_as_torch(None, model)
    fed, torch_output, paddle_output = hardsigmoid_outputs(torch, paddle, model)
    np.testing.assert_allclose(paddle_output, torch_output, rtol=0, atol=1e-15)
    inputs = paddle.to_tensor(fed, stop_gradient=False)
    model(inputs).sum().backward()
    torch_inputs = torch.from_numpy(fed).requires_grad_()
    torch.nn.functional.hardsigmoid(torch_inputs).sum().backward()
    np.testing.assert_array_equal(inputs.grad.numpy(), torch_inputs.grad.numpy())


def test_a_layer_that_differs_otherwise_is_a_defect_at_the_first_divergence(torch):
    fed = images() * 4
    torch_output = torch.nn.ReLU()(torch.from_numpy(fed)).numpy()
    port_output = torch.nn.ReLU6()(torch.from_numpy(fed)).numpy()  # a ReLU6 planted for the ReLU
    localization = localized("features.1", "ReLU / ReLU6", "eval", torch_output, port_output)
    _, finding = only_finding(forward_failure(), {("float64", CASE): localization},
                              layer_evidence("features.1", "eval", fed, torch_output, port_output))
    assert finding.kind == DEFECT
    assert finding.reason.startswith("first divergence at features.1 (ReLU / ReLU6), eval mode")


# -- rounding ---------------------------------------------------------------------------------------------


def test_a_float32_only_run_gets_the_float64_evidence_the_rounding_rule_needs():
    failing = StepResult("backward", "float32", [compare_arrays("g", np.ones(2), np.array([1.0, 1.5]), NEAR_EXACT)],
                         CASE)
    passing_forward = StepResult("forward", "float32", [compare_arrays("h", np.ones(2), np.ones(2), NEAR_EXACT)], CASE)
    assert float64_checks_needed([failing, passing_forward]) == {CASE: ["backward"]}
    agree = compare_arrays("x", np.ones(3), np.ones(3), NEAR_EXACT)
    flipped = compare_arrays("x", np.ones(3), np.full(3, 2.0), NEAR_EXACT)
    localization = Localization("float32", [Trace("eval", "backward", [LayerRow("features.12", "MaxPool2d", agree,
                                                                                 flipped, agree)])], [], CASE)
    without, = verdicts([failing], {("float32", CASE): localization})
    assert without.kind == DEFECT and not without.passed  # no float64 check: the rule cannot hold
    float64 = StepResult("backward", "float64", [compare_arrays("g", np.ones(2), np.ones(2), NEAR_EXACT)], CASE)
    verdict, finding = only_finding(failing, {("float32", CASE): localization}, float64=[float64])
    assert verdict.passed and finding.kind == ROUNDING and "float64 agrees" in verdict.line()
    assert float64_checks_needed([failing, float64]) == {}


FLOAT32_LIKE = Tolerance(atol=0.0, rtol=2e-5)


def structural_run(float32_only_error=0.0, float64_differs=True):
    """A float32 forward check that fails while float64's passes, localized in both precisions: one layer
    whose Paddle counterpart runs a ReLU inside it that torch runs as a layer of its own (so it differs fed
    torch's values in both), plus `float32_only_error` added to its float32 output alone."""
    layer, key = "features.norm5", "eval.features.norm5.output"
    fed = images(seed=3)
    localizations, layers, torch_alone = {}, {}, {}
    for dtype in ("float32", "float64"):
        torch_output = (fed * 2).astype(dtype)
        paddle_output = (np.maximum(fed * 2, 0) if float64_differs or dtype == "float32" else fed * 2).astype(dtype)
        if dtype == "float32":
            paddle_output = paddle_output + np.float32(float32_only_error)
        agree = compare_arrays("in", np.ones(1), np.ones(1), FLOAT32_LIKE)
        alone = compare_arrays(key, torch_output, paddle_output, FLOAT32_LIKE)
        traces = [Trace("eval", "forward", [LayerRow(layer, "BatchNorm2d / BatchNorm", agree, agree, alone)])]
        localizations[(dtype, CASE)] = Localization(dtype, traces, [], CASE)
        record = Record({"eval": [{"name": layer, "inputs": [None]}]}, {f"eval.{layer}.input": fed.astype(dtype),
                                                                        key: torch_output}, {})
        layers[dtype], torch_alone[dtype] = (record, {key: paddle_output}), {key: torch_output}
    run_evidence = Evidence(lambda dtype, case, step: None, lambda case: {}, lambda dtype, case: layers[dtype],
                            lambda dtype, case: torch_alone[dtype])
    failing = checked("forward", "float32", {"logits": np.ones(2)}, {"logits": np.array([1.0, 1.01])})
    float64 = checked("forward", "float64", {"logits": np.ones(2)}, {"logits": np.ones(2)})
    verdict, _ = verdicts([failing, float64], localizations, run_evidence)
    return verdict


def test_a_layer_that_differs_alike_in_float64_is_how_the_trees_are_cut_not_a_float32_defect():
    verdict = structural_run()
    assert verdict.passed and verdict.kind == ROUNDING, verdict.line()
    assert "but features.norm5, which differ so in float64 alike" in verdict.line()


@pytest.mark.parametrize("planted", [dict(float32_only_error=1e-3), dict(float64_differs=False)],
                         ids=["float32-only error at that layer", "the layer agrees in float64"])
def test_a_layer_that_differs_otherwise_in_float32_than_in_float64_is_a_defect(planted):
    verdict = structural_run(**planted)
    assert not verdict.passed and verdict.kind == DEFECT, verdict.line()
    assert "features.norm5" in verdict.line()


# -- checking artifacts: a zero reference ------------------------------------------------------------------


def bias_gradients_before_batch_norm(torch, order):
    """The gradients of a BatchNorm's weight and bias when another BatchNorm in training mode follows it
    through a 1x1 convolution: the bias's is 0 but for rounding (the second one takes every channel's mean
    out). `order` permutes the batch, so the two computations round differently, as two frameworks do."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.BatchNorm2d(CHANNELS), torch.nn.Conv2d(CHANNELS, 4, 1, bias=False),
                                torch.nn.BatchNorm2d(4)).double().train()
    batch = torch.from_numpy(images()[order])
    targets = torch.from_numpy(np.random.default_rng(2).standard_normal((BATCH, 4, SIZE, SIZE))[order])
    ((model(batch) - targets) ** 3).mean().backward()
    return {"grad.bn.weight": model[0].weight.grad.numpy(), "grad.bn.bias": model[0].bias.grad.numpy()}


def test_a_zero_reference_is_held_to_its_operations_scale_and_a_real_difference_there_still_fails(torch):
    reference = bias_gradients_before_batch_norm(torch, [0, 1, 2, 3])
    port = bias_gradients_before_batch_norm(torch, [3, 1, 0, 2])
    assert np.abs(reference["grad.bn.bias"]).max() < 1e-15 < np.abs(reference["grad.bn.weight"]).max()
    assert np.any(reference["grad.bn.bias"] != port["grad.bn.bias"])
    # held to its own scale, atol 0 + rtol * 1e-17, rounding fails
    assert not compare_arrays("grad.bn.bias", reference["grad.bn.bias"], port["grad.bn.bias"], NEAR_EXACT).passed
    result = checked("backward", "float64", reference, port)
    assert result.passed
    bias, = [key for key in result.keys if key.name == "grad.bn.bias"]
    assert bias.note.startswith(ZERO_REFERENCE) and bias.limit == pytest.approx(
        1e-10 * np.abs(reference["grad.bn.weight"]).max())
    defect = {**port, "grad.bn.bias": port["grad.bn.bias"] + 1e-3 * np.abs(reference["grad.bn.weight"]).max()}
    failing = checked("backward", "float64", reference, defect)
    _, finding = only_finding(failing)
    assert finding.kind == DEFECT and finding.keys == ("grad.bn.bias",)


def test_a_key_that_is_not_zero_keeps_its_own_scale():
    reference = {"grad.fc.weight": np.array([1.0, -2.0]), "grad.fc.bias": np.array([1e-3, 2e-3])}
    port = {**reference, "grad.fc.bias": reference["grad.fc.bias"] * (1 + 1e-6)}
    result = check_step("backward", "float64", reference, port)
    bias, = [key for key in result.keys if key.name == "grad.fc.bias"]
    assert not bias.passed and bias.limit == pytest.approx(1e-10 * 2e-3) and bias.note == ""
    assert Tolerance(0.0, 1e-10).limit(2e-3) == bias.limit


def test_a_difference_of_many_layers_is_one_reason_naming_a_few_of_them():
    layers = [f"features.{index}.1" for index in range(5)]
    reasons = [(layer, known_differences.BATCH_NORM_EPSILON.format(layer=layer, epsilon=1e-5)) for layer in layers]
    reasons.append(("classifier.0", known_differences.DROPOUT_MODE.format(layer="classifier.0", scale=0.5, p=0.5)))
    grouped = known_differences.grouped_reasons(reasons)
    assert grouped == [known_differences.BATCH_NORM_EPSILON.format(
        layer="features.0.1, features.1.1, features.2.1 and 2 more", epsilon=1e-5), reasons[-1][1]]


def loss_and_forward(loss_port, forward_port):
    """A float64 loss check and the forward check of its case, each agreeing or not with torch's values."""
    def result(step, port):
        return StepResult(step, "float64", [compare_arrays("loss_total" if step == "loss" else "logits",
                                                           np.ones(2), np.asarray(port), NEAR_EXACT)], CASE)
    return verdicts([result("forward", forward_port), result("loss", loss_port)], {})


def test_a_loss_that_differs_on_agreeing_outputs_is_a_defect_of_the_loss_function():
    forward, loss = loss_and_forward(loss_port=[1.0, 1.5], forward_port=[1.0, 1.0])
    assert forward.passed and not loss.passed and loss.kind == DEFECT
    assert "the Paddle side's loss function differs" in loss.findings[0].reason


def test_a_loss_that_follows_differing_outputs_points_at_the_model():
    forward, loss = loss_and_forward(loss_port=[1.0, 1.5], forward_port=[1.0, 1.5])
    assert not forward.passed and loss.kind == DEFECT
    assert "the model's outputs already differ" in loss.findings[0].reason
    assert "loss function" not in loss.findings[0].reason


def test_a_loss_that_follows_known_differences_of_the_outputs_is_known_not_a_defect():
    forward = StepVerdict(step="forward", case=CASE, dtype="float64", worst_key="logits", max_abs=1.0, max_rel=1.0,
                          limit=0.0, note="", findings=(Finding(KNOWN, "a dropout's eval output scaled", ("logits",)),))
    assert loss_finding(("loss_total",), forward).kind == KNOWN
    defect = dataclasses.replace(forward, findings=(Finding(DEFECT, "first divergence at 3", ("logits",)),))
    assert loss_finding(("loss_total",), defect).kind == DEFECT


# -- known library differences within each layer's limit, added up along the chain -------------------------


def accumulated_finding(torch, paddle, torch_epsilon, paddle_epsilon, scale, planted=0.0):
    """ShuffleNetV2's case: a training-mode BatchNorm ("features.1") whose output, fed torch's input of
    standard deviation `scale`, differs within its limit only; the chain's output first differs beyond its
    limit at the convolution after it ("features.2", which fed torch's values agrees). `planted`: a relative
    difference of the convolution before it ("features.0"), in times the BatchNorm's."""
    fed = images(scale=scale)
    torch_output = torch.nn.BatchNorm2d(CHANNELS, eps=torch_epsilon).double().train()(
        torch.from_numpy(fed)).detach().numpy()
    paddle_layer = paddle.nn.BatchNorm2D(CHANNELS, epsilon=paddle_epsilon)
    paddle_layer.to(dtype="float64")
    paddle_layer.train()
    paddle_output = paddle_layer(paddle.to_tensor(fed)).numpy()
    agree = compare_arrays("in", np.ones(1), np.ones(1), NEAR_EXACT)
    normalized = compare_arrays("train.features.1.output", torch_output, paddle_output, NEAR_EXACT)
    assert normalized.passed and normalized.max_abs > 0  # within its limit
    convolution = compare_arrays("train.features.0.output", np.ones(3),
                                 np.array([1.0, 1.0, 1.0 + planted * normalized.max_rel]), NEAR_EXACT)
    assert convolution.passed
    chained = compare_arrays("train.features.2.output", np.ones(2), np.array([1.0, 1.0 + 1e-9]), NEAR_EXACT)
    rows = [LayerRow("features.0", "Conv2d", agree, convolution, convolution),
            LayerRow("features.1", "BatchNorm2d", agree, normalized, normalized),
            LayerRow("features.2", "Conv2d", agree, chained, agree)]
    traces = [Trace(mode, direction, rows if (mode, direction) == ("train", "forward") else rows[:1])
              for mode in ("eval", "train") for direction in ("forward", "backward")]
    return only_finding(forward_failure(), {("float64", CASE): Localization("float64", traces, [], CASE)},
                        layer_evidence("features.1", "train", fed, torch_output, paddle_output,
                                       operator={"eps": torch_epsilon}))[1]


def test_paddles_float32_epsilon_within_each_layers_limit_beyond_the_chains_is_named(torch, paddle):
    finding = accumulated_finding(torch, paddle, 1e-5, 1e-5, scale=0.1)  # 1e-11 relative, the limit 1e-10
    assert finding.kind == KNOWN, finding.text()
    assert finding.reason == (known_differences.BATCH_NORM_EPSILON.format(layer="features.1", epsilon=1e-5)
                              + known_differences.ACCUMULATED.format(layers="features.2"))


def test_an_epsilon_that_differs_within_the_layers_limit_is_a_defect_not_its_precision(torch, paddle):
    """1e-3 vs 1e-5 (Inception v3's), hidden within the limit by a variance of 1e8."""
    finding = accumulated_finding(torch, paddle, 1e-3, 1e-5, scale=1e4)
    assert finding.kind == DEFECT and finding.reason.startswith("first divergence at features.2 (Conv2d)")


def test_a_larger_difference_within_its_limit_before_the_float32_epsilon_is_a_defect(torch, paddle):
    finding = accumulated_finding(torch, paddle, 1e-5, 1e-5, scale=0.1, planted=4.0)
    assert finding.kind == DEFECT and finding.reason.startswith("first divergence at features.2 (Conv2d)")


def test_a_float32_check_whose_float64_fails_by_known_differences_alone_is_those_differences(monkeypatch):
    known = [("BatchNorm epsilon precision at 4: float32(1e-5)", ["grad.w"])]
    monkeypatch.setattr(known_differences, "of_keys", lambda result, failing, evidence: (
        known if result.dtype == "float64" else []))
    float32, float64 = verdicts([StepResult("backward", dtype, [compare_arrays("grad.w", np.ones(2),
                                                                               np.array([1.0, 1.5]), NEAR_EXACT)],
                                            CASE) for dtype in ("float32", "float64")], {}, evidence=object())
    assert float64.kind == KNOWN and float32.kind == KNOWN and not float32.passed
    assert "float64 fails by known library differences alone (BatchNorm epsilon precision at 4)" in float32.findings[0].reason


def test_a_float32_check_whose_float64_has_a_defect_stays_a_defect():
    float32, float64 = verdicts([StepResult("backward", dtype, [compare_arrays("grad.w", np.ones(2),
                                                                               np.array([1.0, 1.5]), NEAR_EXACT)],
                                            CASE) for dtype in ("float32", "float64")], {})
    assert float64.kind == DEFECT and float32.kind == DEFECT
