"""The data, metric and inference steps: both frameworks' loaders and encoders agree (the loaders and
encoders the product uses), and defects are named."""
import types

import pytest

import paddle_impl.data
import paddle_impl.fast_data
from alignment.pairs.greedyhash import paddle_side
from alignment.pairs.greedyhash.steps.data import REFERENCE_PREFIX
from greedyhash_common.data.dataset import write_split
from greedyhash_common.data.synthetic_cifar10 import write_synthetic_cifar10

from .step_runner import check_both


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
    return check_both(step, weights, dtype, paddle, data=data, split_file=split_file)


def failing(result):
    return {key.name for key in result.keys if not key.passed}


def paddle_side_with_data(**replacements):
    data = types.SimpleNamespace(**{**vars(paddle_impl.data), **replacements})
    return types.SimpleNamespace(**{**vars(paddle_side), "data": data})


def paddle_side_with_fast_data(**replacements):
    fast_data = types.SimpleNamespace(**{**vars(paddle_impl.fast_data), **replacements})
    return types.SimpleNamespace(**{**vars(paddle_side), "fast_data": fast_data})


@pytest.mark.slow
def test_loaders_agree_batch_for_batch(weights, tiny_data):
    result = run_step("data", weights, tiny_data)
    assert result.passed, failing(result)
    assert {"train.epoch1.batch1.labels", "query.batch0.images", "database.batch0.labels"} <= {
        key.name for key in result.keys}
    assert max(key.max_abs for key in result.keys) == 0.0


def test_another_batch_order_in_the_loader_training_reads_is_named(weights, tiny_data):
    def train_loader_with_other_seed(images, labels, batch_size, seed, *arguments, **options):
        return paddle_impl.fast_data.train_loader(images, labels, batch_size, seed + 1, *arguments, **options)

    result = run_step("data", weights, tiny_data, paddle_side_with_fast_data(train_loader=train_loader_with_other_seed))
    assert "train.epoch0.batch0.labels" in failing(result)  # against torch, and against its own reference loader:
    assert "train.epoch0.batch0.labels == reference_loader.train.epoch0.batch0.labels (paddle)" in failing(result)
    assert not {"query.batch0.labels", "database.batch0.images"} & failing(result)


def test_a_fast_loader_with_a_shifted_normalization_is_named(weights, tiny_data):
    def eval_loader(images, labels, batch_size, size=224, workers=0):
        loader = paddle_impl.fast_data.eval_loader(images, labels, batch_size, size, workers)
        loader.table = loader.table + 0.5  # a mean subtracted in the wrong units, say
        return loader

    result = run_step("data", weights, tiny_data, paddle_side_with_fast_data(eval_loader=eval_loader))
    assert {"query.batch0.images", "database.batch0.images"} <= failing(result)


def test_a_reference_transform_without_normalization_is_named_inside_the_side(weights, tiny_data):
    import paddle.vision.transforms as T

    def unnormalized(size=224):
        return T.Compose([T.Resize(size), T.ToTensor()])

    def eval_loader(images, labels, batch_size, size=224, num_workers=0):
        loader = paddle_impl.data.eval_loader(images, labels, batch_size, size, num_workers)
        loader.dataset.transform = unnormalized(size)
        return loader

    result = run_step("data", weights, tiny_data, paddle_side_with_data(eval_loader=eval_loader))
    assert f"query.batch0.images == {REFERENCE_PREFIX}query.batch0.images (paddle)" in failing(result)


@pytest.mark.slow
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


def test_the_deployed_predictor_agrees_with_torch(weights, tiny_data):
    result = run_step("inference", weights, tiny_data)
    assert result.passed, failing(result)
    assert {"query_codes", "database_codes", "map"} <= {key.name for key in result.keys}


@pytest.mark.slow
def test_a_predictor_that_deploys_stale_weights_is_named(weights, tiny_data):
    """A deployed encoder built before the weights were loaded: the dynamic graph is right, the predictor not."""
    from paddle_impl.model import GreedyHash
    from paddle_impl.static_model import InferenceEncoder

    def stale_encoder(model, image_size, threads):
        return InferenceEncoder(GreedyHash(model.fc_plus.weight.shape[1]), image_size, threads).encode

    result = run_step("inference", weights, tiny_data, types.SimpleNamespace(**{**vars(paddle_side),
                                                                              "deployed_encoder": stale_encoder}))
    assert {"query_h", "database_h", "query_codes"} <= failing(result)
