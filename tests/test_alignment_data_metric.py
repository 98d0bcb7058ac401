"""The data and metric steps: both frameworks' loaders and encoders agree, and defects are named."""
import types

import numpy as np
import pytest

import paddle_impl.data
from alignment.check import check_step
from alignment.sides import paddle_side, torch_side
from alignment.steps import STEPS, StepContext
from greedyhash_common.dataset import write_split
from greedyhash_common.synthetic_cifar10 import write_synthetic_cifar10

from .conftest import BIT


@pytest.fixture(scope="module")
def tiny_data(module_tmp):
    """12 images per class in CIFAR-10's layout, and its split (4 query / 4 train per class)."""
    folder = module_tmp("tiny")
    write_synthetic_cifar10(folder, images_per_class=12, seed=1)
    split_file = str(folder / "split.npz")
    write_split(str(folder), split_file, query_per_class=4, train_per_class=4)
    return str(folder), split_file


def run_step(step, weights, tiny_data, paddle=paddle_side, dtype="float32"):
    data, split_file = tiny_data
    module = STEPS[step]
    images, labels = np.zeros((1, 3, 64, 64)), np.zeros(1, np.int64)

    def context(weights_file):
        return StepContext(BIT, dtype, weights_file, images, labels, 0, data, split_file, 64, 64)

    return check_step(step, dtype, module.run(torch_side, context(weights[0])),
                      module.run(paddle, context(weights[1])), getattr(module, "CODE_KEYS", None))


def failing(result):
    return {key.name for key in result.keys if not key.passed}


def paddle_side_with_data(**replacements):
    data = types.SimpleNamespace(**{**vars(paddle_impl.data), **replacements})
    return types.SimpleNamespace(**{**vars(paddle_side), "data": data})


def test_loaders_agree_batch_for_batch(weights, tiny_data):
    result = run_step("data", weights, tiny_data)
    assert result.passed, failing(result)
    assert {"train.epoch1.batch1.labels", "query.batch0.images", "database.batch0.labels"} <= {
        key.name for key in result.keys}
    assert max(key.max_abs for key in result.keys) == 0.0


def test_another_batch_order_is_named(weights, tiny_data):
    def train_loader_with_other_seed(images, labels, batch_size, seed, **options):
        return paddle_impl.data.train_loader(images, labels, batch_size, seed + 1, **options)

    result = run_step("data", weights, tiny_data, paddle_side_with_data(train_loader=train_loader_with_other_seed))
    assert "train.epoch0.batch0.labels" in failing(result)
    assert not {"query.batch0.labels", "database.batch0.images"} & failing(result)


def test_a_transform_without_normalization_is_named(weights, tiny_data):
    import paddle.vision.transforms as T

    def unnormalized(size=224):
        return T.Compose([T.Resize(size), T.ToTensor()])

    def eval_loader(images, labels, batch_size, size=224, num_workers=0):
        loader = paddle_impl.data.eval_loader(images, labels, batch_size, size, num_workers)
        loader.dataset.transform = unnormalized(size)
        return loader

    result = run_step("data", weights, tiny_data, paddle_side_with_data(eval_loader=eval_loader))
    assert {"query.batch0.images", "database.batch0.images"} <= failing(result)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_codes_and_map_agree(weights, tiny_data, dtype):
    result = run_step("metric", weights, tiny_data, dtype=dtype)
    assert result.passed, failing(result)
    scores = {key.name: key.max_abs for key in result.keys}
    assert scores["query_codes"] == 0 and scores["database_codes"] == 0 and scores["map"] == 0


def test_negated_codes_are_named_although_map_cannot_see_them(weights, tiny_data):
    def encode_negated(model, loader):
        codes, h, logits, labels = paddle_side.evaluation.encode(model, loader)
        return -codes, h, logits, labels

    evaluation = types.SimpleNamespace(encode=encode_negated)
    result = run_step("metric", weights, tiny_data,
                      types.SimpleNamespace(**{**vars(paddle_side), "evaluation": evaluation}))
    assert {"query_codes", "database_codes"} <= failing(result)
    assert "map" not in failing(result)  # Hamming distances are unchanged when every code is negated
