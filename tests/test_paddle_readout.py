"""The Paddle side reads a CPU tensor without copying it (alignment/sides/paddle_tensors.numpy, through
DLPack), with the values, dtype and shape a copy has, for every kind of value a step reads."""
import numpy as np
import pytest

paddle = pytest.importorskip("paddle")

from alignment.sides import paddle_tensors  # noqa: E402 (after the framework's import check)

VALUES = {"float64 weight": np.arange(12.0).reshape(3, 4), "float32": np.linspace(-1, 1, 6, dtype=np.float32),
          "scalar loss": np.float64(2.5), "sign codes": np.array([1.0, -1.0, 0.0]), "labels": np.arange(4),
          "mask": np.array([True, False]), "empty": np.zeros((0, 3))}


@pytest.mark.parametrize("name", VALUES)
def test_a_read_value_is_what_a_copy_gives(name):
    tensor = paddle.to_tensor(VALUES[name])
    read = paddle_tensors.numpy(tensor)
    copy = tensor.numpy()
    assert read.dtype == copy.dtype and read.shape == copy.shape and np.array_equal(read, copy)


def test_a_transposed_view_and_a_parameter_with_gradients_are_read_in_their_own_layout():
    parameter = paddle.create_parameter([3, 4], "float64")
    parameter.set_value(VALUES["float64 weight"])
    assert not parameter.stop_gradient
    assert np.array_equal(paddle_tensors.numpy(parameter), VALUES["float64 weight"])
    assert np.array_equal(paddle_tensors.numpy(parameter.T), VALUES["float64 weight"].T)


def test_the_values_are_shared_not_copied():
    """What makes the read cheap, and why a step that updates a tensor after reading it copies first."""
    tensor = paddle.to_tensor(np.zeros(4))
    read = paddle_tensors.numpy(tensor)
    with paddle.no_grad():
        tensor.add_(paddle.ones([4], dtype="float64"))
    assert read.tolist() == [1.0, 1.0, 1.0, 1.0]
