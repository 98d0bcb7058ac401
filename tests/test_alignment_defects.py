"""Planted defects in the Paddle port: each must make the right step fail and name the right key.

The steps run in this process on both frameworks (the suite runs them in two processes; the step
code and the checker are the same), at 64x64 in float64 unless the defect needs otherwise.
"""
import numpy as np
import paddle
import pytest

from alignment.check import check_step
from alignment.sides import paddle_side, torch_side
from alignment.steps import STEPS, StepContext

from .conftest import BIT


class PaddleSideWith:
    """The Paddle side of the suite, with a defect planted in the model it builds."""

    def __init__(self, plant):
        self.plant = plant

    def __getattr__(self, name):
        return getattr(paddle_side, name)

    def build_model(self, bit, dtype, weights):
        return self.plant(paddle_side.build_model(bit, dtype, weights))


def run_step(step, weights, images, labels, paddle=paddle_side, dtype="float64"):
    torch_file, paddle_file = weights
    module = STEPS[step]
    torch_values = module.run(torch_side, StepContext(BIT, dtype, torch_file, images, labels, mask_seed=0))
    paddle_values = module.run(paddle, StepContext(BIT, dtype, paddle_file, images, labels, mask_seed=0))
    return check_step(step, dtype, torch_values, paddle_values, getattr(module, "CODE_KEYS", None),
                      getattr(module, "INVARIANTS", ()))


def failing(result):
    return {key.name for key in result.keys if not key.passed}


def untransposed_square_weight(model):
    weight = model.alex.classifier[4].weight
    weight.set_value(weight.numpy().T)
    return model


def downscale_in_infer_dropout(model):
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.Dropout):
            layer.mode = "downscale_in_infer"
    return model


def leaky_relu_in_features(model):
    model.alex.features._sub_layers["4"] = paddle.nn.LeakyReLU(0.01)
    return model


class NaNInH(paddle.nn.Layer):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        logits, h, b = self.model(x)
        poison = np.zeros(h.shape, dtype=str(h.dtype).split(".")[-1])
        poison[0, 0] = np.nan
        return logits, h + paddle.to_tensor(poison), b


@pytest.mark.parametrize("step", ["forward", "loss", "backward"])
def test_correct_port_passes(step, weights, small_batch):
    result = run_step(step, weights, *small_batch)
    assert result.passed, [(key.name, key.max_rel, key.note) for key in result.keys if not key.passed]


def test_correct_port_passes_forward_at_224_in_float32(weights):
    images = np.random.default_rng(5).standard_normal((2, 3, 224, 224))
    result = run_step("forward", weights, images, np.array([0, 1]), dtype="float32")
    assert result.passed, [(key.name, key.max_rel, key.note) for key in result.keys if not key.passed]


def test_missed_transpose_of_the_square_weight_fails_forward_naming_h(weights, small_batch):
    result = run_step("forward", weights, *small_batch, paddle=PaddleSideWith(untransposed_square_weight))
    assert {"h", "logits", "train_h", "train_logits"} <= failing(result)
    assert result.worst().name in {"h", "logits", "train_h", "train_logits", "b", "train_b"}


def test_missed_transpose_fails_backward_naming_the_weight(weights, small_batch):
    result = run_step("backward", weights, *small_batch, paddle=PaddleSideWith(untransposed_square_weight))
    assert "grad.alex.classifier.4.weight" in failing(result)


def test_downscale_in_infer_dropout_fails_the_training_mode_outputs(weights, small_batch):
    result = run_step("forward", weights, *small_batch, paddle=PaddleSideWith(downscale_in_infer_dropout))
    assert {"train_h", "train_logits"} <= failing(result)


def test_leaky_relu_fails_forward_and_backward(weights, small_batch):
    plant = PaddleSideWith(leaky_relu_in_features)
    assert "h" in failing(run_step("forward", weights, *small_batch, paddle=plant))
    assert "grad.alex.features.3.weight" in failing(run_step("backward", weights, *small_batch, paddle=plant))


def test_nan_in_one_output_fails_naming_it(weights, small_batch):
    result = run_step("forward", weights, *small_batch, paddle=PaddleSideWith(NaNInH))
    notes = {key.name: key.note for key in result.keys if not key.passed}
    assert notes == {"h": "NaN or Inf in paddle", "train_h": "NaN or Inf in paddle"}
