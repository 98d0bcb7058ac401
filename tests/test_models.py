"""The two GreedyHash implementations: same structure, same names, same outputs, same gradients."""
import numpy as np
import paddle
import pytest
import torch
import torchvision

from alignment.pairs.greedyhash import paddle_side, torch_side
from greedyhash_common.hyperparameters import QUANTIZATION_WEIGHT
from greedyhash_common.state_dicts.key_map import GREEDYHASH_KEY_MAP, TRANSPOSED_LINEAR_WEIGHTS, greedyhash_torch_shapes
from paddle_impl.model import Conv2D as PaddleConv2D
from paddle_impl.model import GreedyHash as PaddleGreedyHash
from torch_impl.model import GreedyHash as TorchGreedyHash

from .conftest import BIT


@pytest.mark.parametrize("bit", [12, 48])
def test_parameter_names_and_shapes_follow_the_key_map(bit):
    torch_shapes = {key: tuple(value.shape) for key, value in TorchGreedyHash(bit).state_dict().items()}
    paddle_shapes = {key: tuple(value.shape) for key, value in PaddleGreedyHash(bit).state_dict().items()}
    assert list(torch_shapes) == list(GREEDYHASH_KEY_MAP)
    assert list(paddle_shapes) == list(GREEDYHASH_KEY_MAP.values())
    assert torch_shapes == greedyhash_torch_shapes(bit, 10)
    for torch_key, paddle_key in GREEDYHASH_KEY_MAP.items():
        expected = torch_shapes[torch_key][::-1] if torch_key in TRANSPOSED_LINEAR_WEIGHTS else torch_shapes[torch_key]
        assert paddle_shapes[paddle_key] == expected, paddle_key


def test_torch_backbone_is_torchvision_alexnet_without_the_imagenet_layer():
    reference = torchvision.models.alexnet(weights=None).state_dict()
    backbone = TorchGreedyHash(BIT).alex.state_dict()
    assert set(reference) - set(backbone) == {"classifier.6.weight", "classifier.6.bias"}
    assert all(backbone[key].shape == reference[key].shape for key in backbone)


def test_paddle_dropout_scales_like_torch():
    for layer in PaddleGreedyHash(BIT).sublayers():
        if isinstance(layer, paddle.nn.Dropout):
            assert layer.mode == "upscale_in_train" and layer.p == 0.5


@pytest.mark.parametrize("side", [torch_side, paddle_side], ids=["torch", "paddle"])
def test_forward_contract_and_straight_through_sign(side, weights, small_batch):
    torch_file, paddle_file = weights
    model = side.build_model(BIT, "float64", torch_file if side is torch_side else paddle_file)
    images = side.tensor(small_batch[0])
    logits, h, b = model(images)
    assert tuple(logits.shape) == (4, 10) and tuple(h.shape) == (4, BIT) and tuple(b.shape) == (4, BIT)
    np.testing.assert_array_equal(side.numpy(b), np.sign(side.numpy(h)))
    upstream = side.tensor(np.random.default_rng(1).standard_normal((4, BIT)))
    grad_h, = side.gradients((b * upstream).sum(), [h])
    np.testing.assert_array_equal(grad_h, side.numpy(upstream))


@pytest.mark.parametrize("side", [torch_side, paddle_side], ids=["torch", "paddle"])
def test_loss_terms(side):
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    h = np.array([[0.5, -2.0], [1.0, 0.0]])
    labels = np.array([0, 2])
    total, cross_entropy, quantization = (float(side.numpy(term)) for term in
                                          side.loss(side.tensor(logits), side.tensor(h), side.tensor(labels)))
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected_ce = -log_probs[[0, 1], labels].mean()
    expected_quantization = np.mean(np.abs(np.abs(h) - 1) ** 3)
    assert cross_entropy == pytest.approx(expected_ce, rel=1e-12)
    assert quantization == pytest.approx(expected_quantization, rel=1e-12)
    assert total == pytest.approx(expected_ce + QUANTIZATION_WEIGHT * expected_quantization, rel=1e-12)


def test_64_and_224_inputs_give_the_same_feature_width(weights):
    model = torch_side.build_model(BIT, "float32", weights[0])
    with torch.no_grad():
        for size in (64, 224):
            logits, _, _ = model(torch.zeros(1, 3, size, size))
            assert tuple(logits.shape) == (1, 10)


@pytest.mark.parametrize("settings", [{"stride": 4, "padding": 2}, {"padding": 1}, {"padding": [1, 2]},
                                      {"stride": 2, "padding": "SAME"}, {"padding": 0, "bias_attr": False}])
def test_the_ports_conv2d_computes_paddles_conv2d_and_its_gradients(settings):
    """paddle_impl.model.Conv2D adds its bias in another form (for speed): the same function, every
    gradient the same in float64 up to summation order, also when only some gradients are asked for or
    the bias is frozen."""
    rng = np.random.default_rng(0)
    own, reference = PaddleConv2D(3, 5, 3, **settings), paddle.nn.Conv2D(3, 5, 3, **settings)
    for layer in (own, reference):
        layer.to(dtype="float64")
    reference.set_state_dict({key: rng.standard_normal(value.shape) for key, value in reference.state_dict().items()})
    own.set_state_dict(reference.state_dict())
    images = paddle.to_tensor(rng.standard_normal((2, 3, 17, 19)), stop_gradient=False)
    outputs = own(images), reference(images)
    np.testing.assert_array_equal(outputs[0].numpy(), outputs[1].numpy())
    weights = paddle.to_tensor(rng.standard_normal(outputs[1].shape))
    targets = lambda layer: [images] + list(layer.parameters())  # noqa: E731
    own_grads, reference_grads = (paddle.grad((output * weights).sum(), targets(layer), retain_graph=True)
                                  for output, layer in zip(outputs, (own, reference)))
    for mine, theirs in zip(own_grads, reference_grads):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-13, atol=1e-13 * np.abs(theirs.numpy()).max())
    only_input = paddle.grad((own(images) * weights).sum(), [images])[0]
    np.testing.assert_array_equal(only_input.numpy(), reference_grads[0].numpy())
    if own.bias is not None:
        own.bias.stop_gradient = True
        (own(images) * weights).sum().backward()
        assert own.bias.grad is None and own.weight.grad is not None
