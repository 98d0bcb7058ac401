"""The key map inferred from two module trees (alignment.pairs.inferred_layout), against both libraries'
models, a square Linear that only the layer's type can decide, and trees that cannot be paired."""
import numpy as np
import paddle
import pytest
import torch
import torchvision

from alignment.pairs import pair_named
from alignment.pairs.inferred_layout import layout_as_json, layout_from_json, layout_of_models
from greedyhash_common.infra.errors import UserInputError
from weights_convert.convert import torch_to_paddle


def converted_into_paddle(torch_model, paddle_model, layout):
    """Load torch's weights into the Paddle model through `layout`, strictly (every key, every shape)."""
    state = {key: value.detach().numpy() for key, value in torch_model.state_dict().items()}
    paddle_state, _ = torch_to_paddle(state, "torch model", layout)
    own = paddle_model.state_dict()
    assert sorted(paddle_state) == sorted(own)
    for key, value in own.items():
        assert tuple(value.shape) == paddle_state[key].shape, key
        value.set_value(paddle_state[key])


def test_resnet18s_inferred_layout_is_the_rule_written_out():
    pair = pair_named("resnet18")
    written = pair.layout()
    inferred = layout_of_models(pair.build("torch"), pair.build("paddle"), "resnet18")
    assert inferred == written


@pytest.mark.parametrize("name", ["mobilenet_v2", "squeezenet1_1"])
def test_a_zoo_models_weights_cross_through_the_inferred_layout_and_compute_the_same(name):
    torch_model = getattr(torchvision.models, name)(num_classes=10).eval()
    paddle_model = getattr(paddle.vision.models, name)(num_classes=10)
    layout = layout_of_models(torch_model, paddle_model, name)
    converted_into_paddle(torch_model, paddle_model, layout)
    assert all(key.endswith("num_batches_tracked") for key in layout.dropped_torch_keys)
    assert layout.transposed == ("classifier.1.weight",) if name == "mobilenet_v2" else layout.transposed == ()
    assert layout_from_json(layout_as_json(layout)) == layout
    if name == "mobilenet_v2":  # SqueezeNet's ports differ in padding and pooling (docs/zoo.md)
        paddle_model.eval()
        images = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
        expected = torch_model(torch.from_numpy(images)).detach().numpy()
        np.testing.assert_allclose(paddle_model(paddle.to_tensor(images)).numpy(), expected, rtol=1e-4, atol=1e-5)


def square_mlps():
    torch_model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8))
    paddle_model = paddle.nn.Sequential(paddle.nn.Linear(8, 8), paddle.nn.ReLU(), paddle.nn.Linear(8, 8))
    return torch_model, paddle_model


def test_a_square_linear_is_transposed_by_its_type_where_the_shape_cannot_tell():
    torch_model, paddle_model = square_mlps()
    layout = layout_of_models(torch_model, paddle_model, "square")
    assert layout.transposed == ("0.weight", "2.weight")
    converted_into_paddle(torch_model, paddle_model, layout)
    inputs = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    np.testing.assert_allclose(paddle_model(paddle.to_tensor(inputs)).numpy(),
                               torch_model(torch.from_numpy(inputs)).detach().numpy(), atol=1e-6)


class Scale(paddle.nn.Layer):
    """A layer of the port's own: the same weight as a torch Linear under another type."""

    def __init__(self):
        super().__init__()
        self.weight = self.create_parameter([8, 8])

    def forward(self, inputs):
        return paddle.matmul(inputs, self.weight)


def test_trees_that_cannot_be_paired_name_every_unmatched_key_and_the_override():
    torch_model, _ = square_mlps()
    paddle_model = paddle.nn.Sequential(paddle.nn.Linear(8, 8), paddle.nn.ReLU(), Scale())
    with pytest.raises(UserInputError) as refused:
        layout_of_models(torch_model, paddle_model, "odd")
    message = str(refused.value)
    assert "\n" not in message
    assert "torch keys with no Paddle counterpart: 2.weight, 2.bias" in message
    assert "Paddle keys with no torch counterpart: 2.weight" in message
    assert 'key_map={"2.weight": "2.weight"}' in message
    with pytest.raises(UserInputError, match="2.bias"):  # the override names one tensor; the bias is still alone
        layout_of_models(torch_model, paddle_model, "odd", {"2.weight": "2.weight"})
    with pytest.raises(UserInputError, match="key_map names keys the models do not have: 9.weight"):
        layout_of_models(torch_model, paddle_model, "odd", {"9.weight": "2.weight"})
