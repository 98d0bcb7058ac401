"""paddle.vision's ToTensor across Paddle versions: Paddle 3.x divides uint8 by 255 in float32, as
torchvision does; Paddle 2.6 multiplies by the float32 reciprocal, one float32 ulp off for some values
(the cause of Paddle 2.6's data-step difference and of its float64 train and metric failures,
docs/gpu.md, "What CI runs"). paddle_impl.data detects such a ToTensor by what it computes and divides
instead."""
import numpy as np
import pytest
from PIL import Image

import paddle_impl.data
import torch_impl.data
from greedyhash_common.data.dataset import load_data, write_split
from greedyhash_common.data.synthetic_cifar10 import write_synthetic_cifar10


class ReciprocalToTensor:
    """Paddle 2.6's ToTensor: uint8 * float32(1 / 255)."""

    def __call__(self, picture):
        import paddle

        scaled = np.asarray(picture).astype(np.float32) * np.float32(1 / 255)
        return paddle.to_tensor(np.ascontiguousarray(scaled.transpose(2, 0, 1)))


@pytest.fixture
def fresh_detection():
    paddle_impl.data.to_tensor_divides.cache_clear()
    yield
    paddle_impl.data.to_tensor_divides.cache_clear()


def test_a_to_tensor_by_the_reciprocal_is_detected_and_replaced(monkeypatch, fresh_detection):
    import paddle.vision.transforms as T
    import torchvision.transforms as torch_transforms

    picture = Image.fromarray(np.random.default_rng(3).integers(0, 256, (7, 5, 3), dtype=np.uint8))
    expected = torch_transforms.ToTensor()(picture).numpy()
    assert paddle_impl.data.to_tensor_divides() == np.array_equal(T.ToTensor()(picture).numpy(), expected)
    assert np.array_equal(paddle_impl.data.DividingToTensor()(picture).numpy(), expected)

    monkeypatch.setattr(paddle_impl.data.T, "ToTensor", ReciprocalToTensor)
    paddle_impl.data.to_tensor_divides.cache_clear()
    assert not np.array_equal(ReciprocalToTensor()(picture).numpy(), expected)  # the rounding exists
    assert paddle_impl.data.to_tensor_divides() is False
    assert isinstance(paddle_impl.data.reference_transform(8).transforms[1], paddle_impl.data.DividingToTensor)


def test_the_dividing_to_tensor_gives_torchvisions_batches_bit_for_bit(tmp_path, monkeypatch):
    write_synthetic_cifar10(str(tmp_path), images_per_class=6, seed=1)
    split_file = str(tmp_path / "split.npz")
    write_split(str(tmp_path), split_file, query_per_class=2, train_per_class=2)
    query = load_data(str(tmp_path), split_file).subset("query")
    monkeypatch.setattr(paddle_impl.data, "to_tensor_divides", lambda: False)
    for size in (32, 64):
        torch_images, _ = torch_impl.data.to_numpy_batch(next(iter(torch_impl.data.eval_loader(*query, 20, size=size))))
        paddle_images, _ = paddle_impl.data.to_numpy_batch(next(iter(paddle_impl.data.eval_loader(*query, 20,
                                                                                                    size=size))))
        assert paddle_images.dtype == torch_images.dtype == np.float32
        np.testing.assert_array_equal(paddle_images, torch_images)
