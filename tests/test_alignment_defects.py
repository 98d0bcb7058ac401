"""Planted defects in the Paddle port: each must make the right step fail and name the right key.

The steps run in this process on both frameworks (the suite runs them in two processes; the step
code and the checker are the same), at 64x64 in float64 unless the defect needs otherwise.
"""
import numpy as np
import paddle
import pytest

from alignment.pairs.greedyhash import paddle_side

from .step_runner import check_both


class PaddleSideWith:
    """The Paddle side of the suite, with a defect planted in the model it builds."""

    def __init__(self, plant):
        self.plant = plant

    def __getattr__(self, name):
        return getattr(paddle_side, name)

    def build_model(self, bit, dtype, weights):
        return self.plant(paddle_side.build_model(bit, dtype, weights))


def run_step(step, weights, images, labels, paddle=paddle_side, dtype="float64"):
    return check_both(step, weights, dtype, paddle, images=images, labels=labels, size=images.shape[-1])


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_missed_transpose_fails_backward_naming_the_weight(weights, small_batch):
    result = run_step("backward", weights, *small_batch, paddle=PaddleSideWith(untransposed_square_weight))
    assert "grad.alex.classifier.4.weight" in failing(result)


def test_downscale_in_infer_dropout_fails_the_training_mode_outputs(weights, small_batch):
    result = run_step("forward", weights, *small_batch, paddle=PaddleSideWith(downscale_in_infer_dropout))
    assert {"train_h", "train_logits"} <= failing(result)


@pytest.mark.slow
def test_leaky_relu_fails_forward_and_backward(weights, small_batch):
    plant = PaddleSideWith(leaky_relu_in_features)
    assert "h" in failing(run_step("forward", weights, *small_batch, paddle=plant))
    assert "grad.alex.features.3.weight" in failing(run_step("backward", weights, *small_batch, paddle=plant))


def test_nan_in_one_output_fails_naming_it(weights, small_batch):
    result = run_step("forward", weights, *small_batch, paddle=PaddleSideWith(NaNInH))
    notes = {key.name: key.note for key in result.keys if not key.passed}
    assert notes == {"h": "NaN or Inf in paddle", "train_h": "NaN or Inf in paddle"}


# Defects a port can hide at the seeded initialization: each agrees there and fails at the rescaled
# weights (a trained network's value ranges) or at 222 px (every layer non-trivial), named.

def relu6_in_classifier(model):
    model.alex.classifier._sub_layers["5"] = paddle.nn.ReLU6()
    return model


def adaptive_max_pool(model):
    model.alex.avgpool = paddle.nn.AdaptiveMaxPool2D((6, 6))
    return model


def quantization_only_below_one(logits, h, labels, alpha=0.1):
    """The quantization term written as max(1 - |h|, 0)^3: equal to | |h| - 1 |^3 wherever |h| <= 1."""
    cross_entropy = paddle.nn.functional.cross_entropy(logits, labels)
    quantization = paddle.clip(1 - h.abs(), min=0).pow(3).mean()
    return cross_entropy + alpha * quantization, cross_entropy, quantization


@pytest.mark.slow
def test_relu6_passes_at_the_seeded_weights_and_fails_at_the_rescaled_ones(weights, rescaled_weights, small_batch):
    plant = PaddleSideWith(relu6_in_classifier)
    assert run_step("forward", weights, *small_batch, paddle=plant).passed  # why the seeded set is not enough
    assert {"h", "logits", "train_h"} <= failing(run_step("forward", rescaled_weights, *small_batch, paddle=plant))
    assert "grad.alex.classifier.4.weight" in failing(run_step("backward", rescaled_weights, *small_batch,
                                                               paddle=plant))


@pytest.mark.slow
def test_a_quantization_term_wrong_beyond_one_fails_at_the_rescaled_weights(weights, rescaled_weights, small_batch):
    import types

    plant = types.SimpleNamespace(**{**vars(paddle_side), "loss": quantization_only_below_one})
    assert run_step("loss", weights, *small_batch, paddle=plant).passed
    assert {"loss_quantization", "loss_total"} <= failing(run_step("loss", rescaled_weights, *small_batch,
                                                                   paddle=plant))


@pytest.fixture(scope="module")
def batch_222():
    return np.random.default_rng(7).standard_normal((2, 3, 222, 222)), np.array([0, 1])


def at_224(labels):
    return np.random.default_rng(7).standard_normal((len(labels), 3, 224, 224)), labels


@pytest.mark.slow
def test_a_max_pool_in_the_adaptive_pool_agrees_at_224_and_fails_at_222(weights, batch_222):
    plant = PaddleSideWith(adaptive_max_pool)
    assert run_step("forward", weights, *at_224(batch_222[1]), paddle=plant).passed  # a 6x6 map: an identity
    assert {"h", "train_h"} <= failing(run_step("forward", weights, *batch_222, paddle=plant))
    assert "grad.alex.features.10.weight" in failing(run_step("backward", weights, *batch_222, paddle=plant))


def ceil_mode_last_max_pool(model):
    model.alex.features._sub_layers["12"] = paddle.nn.MaxPool2D(kernel_size=3, stride=2, ceil_mode=True)
    return model


@pytest.mark.slow
def test_a_ceil_mode_max_pool_agrees_at_224_and_fails_at_222(weights, batch_222):
    plant = PaddleSideWith(ceil_mode_last_max_pool)
    assert run_step("forward", weights, *at_224(batch_222[1]), paddle=plant).passed  # 13 -> 6 either way
    assert {"h", "train_h"} <= failing(run_step("forward", weights, *batch_222, paddle=plant))
