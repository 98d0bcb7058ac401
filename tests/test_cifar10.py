"""Reading CIFAR-10 (folder, parent folder, archive), the synthetic stand-in, and every bad input."""
import os
import pickle
import shutil
import tarfile

import numpy as np
import pytest

from greedyhash_common.data import source, synthetic_cifar10
from greedyhash_common.data.cifar10 import (ARCHIVE_NAME, BATCH_NAMES, FOLDER_NAME, META_NAME, ROW_LENGTH,
                                            dataset_digest, load_cifar10)
from greedyhash_common.data.source import resolve_data_path
from greedyhash_common.data.synthetic_cifar10 import BUILTIN_IMAGES_PER_CLASS, BUILTIN_SEED, write_synthetic_cifar10
from greedyhash_common.hyperparameters import NUM_CLASSES
from greedyhash_common.infra.errors import UserInputError
from greedyhash_common.infra.safe_pickle import loads_numpy_only
from tests.hostile_files import flip_a_byte_keeping_times

TINY_PER_CLASS = 12
TINY_TRAIN_PER_CLASS = 10  # 5/6 of 12


@pytest.fixture(scope="module")
def tiny_root(module_tmp):
    """A folder holding cifar-10-batches-py/ with 12 synthetic images per class."""
    root = module_tmp("tiny")
    write_synthetic_cifar10(root, TINY_PER_CLASS, seed=7)
    return root


@pytest.fixture
def batches_copy(tiny_root, tmp_path):
    """A private copy of the tiny batches folder that a test may damage."""
    return shutil.copytree(tiny_root / FOLDER_NAME, tmp_path / FOLDER_NAME)


def read_raw(path):
    return loads_numpy_only(path.read_bytes(), str(path), encoding="bytes")


def build_archive(path, batches_folder, special_member=None):
    """Tar batches_folder as the real archive does; `special_member` (a TarInfo) replaces its file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(batches_folder, arcname=FOLDER_NAME, recursive=False)
        for name in BATCH_NAMES + (META_NAME,):
            member_name = f"{FOLDER_NAME}/{name}"
            if special_member is not None and special_member.name == member_name:
                tar.addfile(special_member)
            else:
                tar.add(batches_folder / name, arcname=member_name)
    return path


# --- reading good data ------------------------------------------------------------------------------

def test_folder_parent_and_archive_give_the_same_arrays(tiny_root, tmp_path):
    from_parent = load_cifar10(tiny_root)
    from_folder = load_cifar10(tiny_root / FOLDER_NAME)
    archive = build_archive(tmp_path / ARCHIVE_NAME, tiny_root / FOLDER_NAME)
    from_archive = load_cifar10(archive)
    for images, labels in (from_folder, from_archive):
        np.testing.assert_array_equal(images, from_parent[0])
        np.testing.assert_array_equal(labels, from_parent[1])


def test_a_folder_holding_the_archive_is_read_too(tiny_root, tmp_path):
    build_archive(tmp_path / ARCHIVE_NAME, tiny_root / FOLDER_NAME)
    assert resolve_data_path(tmp_path) == str(tmp_path / ARCHIVE_NAME)
    np.testing.assert_array_equal(load_cifar10(tmp_path)[0], load_cifar10(tiny_root)[0])


def test_shapes_dtypes_and_balanced_labels(tiny_root):
    images, labels = load_cifar10(tiny_root)
    assert images.shape == (NUM_CLASSES * TINY_PER_CLASS, 32, 32, 3) and images.dtype == np.uint8
    assert labels.shape == (NUM_CLASSES * TINY_PER_CLASS,) and labels.dtype == np.int64
    assert np.bincount(labels, minlength=NUM_CLASSES).tolist() == [TINY_PER_CLASS] * NUM_CLASSES
    train_labels = labels[:NUM_CLASSES * TINY_TRAIN_PER_CLASS]
    assert np.bincount(train_labels).tolist() == [TINY_TRAIN_PER_CLASS] * NUM_CLASSES


def test_reference_order_and_chw_to_hwc(tiny_root):
    images, labels = load_cifar10(tiny_root)
    start = 0
    for name in BATCH_NAMES:
        raw = read_raw(tiny_root / FOLDER_NAME / name)
        count = len(raw[b"labels"])
        np.testing.assert_array_equal(labels[start:start + count], raw[b"labels"])
        row, y, x, channel = raw[b"data"][0], 5, 17, 2
        assert images[start, y, x, channel] == row[channel * 1024 + y * 32 + x]
        start += count
    assert start == len(images)


def test_synthetic_files_have_the_real_layout(tiny_root):
    folder = tiny_root / FOLDER_NAME
    assert sorted(os.listdir(folder)) == sorted(BATCH_NAMES + (META_NAME,))
    for name in BATCH_NAMES:
        raw = read_raw(folder / name)
        assert set(raw) == {b"batch_label", b"labels", b"data", b"filenames"}
        assert isinstance(raw[b"batch_label"], bytes)
        assert all(type(label) is int for label in raw[b"labels"])
        assert raw[b"data"].dtype == np.uint8
        assert raw[b"data"].shape == (len(raw[b"labels"]), ROW_LENGTH)
        assert all(isinstance(filename, bytes) for filename in raw[b"filenames"])
        assert len(raw[b"filenames"]) == len(raw[b"labels"])
    meta = read_raw(folder / META_NAME)
    assert meta[b"label_names"][0] == b"airplane" and meta[b"num_vis"] == ROW_LENGTH
    assert meta[b"num_cases_per_batch"] == len(read_raw(folder / BATCH_NAMES[0])[b"labels"])


def test_synthetic_pickles_are_python2_style_protocol_2(tiny_root):
    data = (tiny_root / FOLDER_NAME / BATCH_NAMES[0]).read_bytes()
    assert data[:2] == b"\x80\x02"
    assert b"_codecs" not in data  # Python 3 would encode bytes at protocol 2 through _codecs.encode


def test_batches_pickled_by_numpy_1_load_too(batches_copy):
    """The real files name numpy.core.multiarray, the module's name before numpy 2."""
    expected = load_cifar10(batches_copy)
    batch = batches_copy / "data_batch_2"
    raw = batch.read_bytes()
    assert b"cnumpy._core.multiarray\n" in raw
    batch.write_bytes(raw.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))
    np.testing.assert_array_equal(load_cifar10(batches_copy)[0], expected[0])


def test_classes_interleave_like_the_real_batches(tiny_root):
    labels = read_raw(tiny_root / FOLDER_NAME / BATCH_NAMES[0])[b"labels"]
    assert labels != sorted(labels)


def test_synthetic_data_is_deterministic_for_a_seed(tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_synthetic_cifar10(tmp_path / name, 6, seed)
    digests = {name: dataset_digest(*load_cifar10(tmp_path / name)) for name in "abc"}
    assert digests["a"] == digests["b"] != digests["c"]


def test_synthetic_classes_are_learnable_but_not_trivial(tmp_path):
    """Nearest class mean on raw pixels of the built-in data, fitted on the 5 training batches."""
    write_synthetic_cifar10(tmp_path, BUILTIN_IMAGES_PER_CLASS, BUILTIN_SEED)
    images, labels = load_cifar10(tmp_path)
    pixels = images.reshape(len(images), -1).astype(np.float64)
    num_train = len(images) * 5 // 6
    train, test = slice(0, num_train), slice(num_train, None)
    class_means = np.stack([pixels[train][labels[train] == c].mean(axis=0) for c in range(NUM_CLASSES)])
    distances = ((pixels[test, None, :] - class_means[None]) ** 2).sum(axis=-1)
    accuracy = float((distances.argmin(axis=1) == labels[test]).mean())
    print(f"nearest-class-mean accuracy on the built-in test_batch: {accuracy:.3f}")
    assert 0.40 <= accuracy <= 0.90


def test_synthetic_cli_writes_the_layout(tmp_path, capsys):
    synthetic_cifar10.main([str(tmp_path), "--per-class", "6", "--seed", "1"])
    assert "wrote 60 images" in capsys.readouterr().out
    assert len(load_cifar10(tmp_path)[0]) == 60


@pytest.mark.parametrize("argv, message", [
    (["--per-class", "5"], "at least 6"),
    (["--seed", "-1"], "non-negative"),
])
def test_synthetic_cli_rejects_bad_options(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        synthetic_cifar10.main([str(tmp_path)] + argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


# --- the built-in data and path resolution ----------------------------------------------------------

def test_builtin_data_is_generated_once_and_regenerated_when_incomplete(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "BUILTIN_CACHE_DIR", tmp_path / "cache")
    folder = resolve_data_path(None)
    assert folder == str(tmp_path / "cache" / FOLDER_NAME)
    digest = dataset_digest(*load_cifar10(folder))
    first_batch = os.path.join(folder, BATCH_NAMES[0])
    written_at = os.stat(first_batch).st_mtime_ns

    assert resolve_data_path(None) == folder
    assert os.stat(first_batch).st_mtime_ns == written_at  # reused, not rewritten

    os.remove(os.path.join(folder, BATCH_NAMES[-1]))
    resolve_data_path(None)
    assert dataset_digest(*load_cifar10(folder)) == digest

    flip_a_byte_keeping_times(first_batch, offset=os.path.getsize(first_batch) // 2)  # an image edited
    assert dataset_digest(*load_cifar10(folder)) != digest
    resolve_data_path(None)
    assert dataset_digest(*load_cifar10(folder)) == digest


def test_builtin_data_is_regenerated_when_its_parameters_change(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "BUILTIN_CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(synthetic_cifar10, "BUILTIN_IMAGES_PER_CLASS", 6)
    assert len(load_cifar10(resolve_data_path(None))[1]) == 60
    monkeypatch.setattr(synthetic_cifar10, "BUILTIN_IMAGES_PER_CLASS", 12)
    assert len(load_cifar10(resolve_data_path(None))[1]) == 120


def test_resolving_a_parent_folder_finds_the_batches_folder(tiny_root):
    assert resolve_data_path(tiny_root) == str(tiny_root / FOLDER_NAME)


@pytest.mark.parametrize("make_path", [
    lambda tmp_path: tmp_path / "does-not-exist",
    lambda tmp_path: tmp_path,  # an empty folder
], ids=["missing path", "empty folder"])
def test_no_data_found_says_where_to_put_it(tmp_path, make_path):
    path = make_path(tmp_path)
    with pytest.raises(UserInputError) as error:
        load_cifar10(path)
    message = str(error.value)
    for expected in (str(path), ARCHIVE_NAME, "https://www.cs.toronto.edu/~kriz/cifar.html",
                     FOLDER_NAME, "nothing is downloaded", "built-in synthetic data"):
        assert expected in message


def test_dataset_digest_tells_data_apart(tiny_root):
    images, labels = load_cifar10(tiny_root)
    digest = dataset_digest(images, labels)
    assert digest == dataset_digest(images.copy(), labels.copy())
    changed_pixel = images.copy()
    changed_pixel[3, 4, 5, 1] ^= 1
    changed_label = labels.copy()
    changed_label[0] = (changed_label[0] + 1) % NUM_CLASSES
    reshaped = images.reshape(len(images), 32, 96, 1)  # same bytes, other shape
    assert len({digest, dataset_digest(changed_pixel, labels), dataset_digest(images, changed_label),
                dataset_digest(reshaped, labels)}) == 4


# --- bad input ---------------------------------------------------------------------------------------

class _RunsAShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def edited(edit):
    """A raw-bytes transformer that unpickles a batch, applies `edit` to its dict, and pickles it."""
    def transform(raw, _):
        batch = loads_numpy_only(raw, "batch", encoding="bytes")
        edit(batch)
        return pickle.dumps(batch, protocol=4)
    return transform


def set_item(key, make_value):
    return edited(lambda batch: batch.__setitem__(key, make_value(batch)))


BAD_BATCHES = {
    "truncated": (lambda raw, _: raw[:len(raw) // 2], "not a readable pickle"),
    "corrupt": (lambda raw, _: bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8)),
                "not a readable pickle"),
    "runs os.system": (lambda raw, marker: pickle.dumps(_RunsAShellCommand(marker), protocol=2),
                       "system"),
    "not a dict": (lambda raw, _: pickle.dumps([1, 2, 3], protocol=2), "expected a dict"),
    "missing labels": (edited(lambda batch: batch.pop(b"labels")), "missing key"),
    "wrong row length": (set_item(b"data", lambda batch: batch[b"data"][:, :3000]), "shape (N, 3072)"),
    "wrong dtype": (set_item(b"data", lambda batch: batch[b"data"].astype(np.float32)), "uint8"),
    "labels count": (set_item(b"labels", lambda batch: batch[b"labels"][:-1]), "labels for"),
    "label 10": (set_item(b"labels", lambda batch: [10] + batch[b"labels"][1:]), "0..9"),
    "label -1": (set_item(b"labels", lambda batch: [-1] + batch[b"labels"][1:]), "0..9"),
    "float labels": (set_item(b"labels", lambda batch: [0.5] * len(batch[b"labels"])), "integers"),
}


@pytest.mark.parametrize("case", sorted(BAD_BATCHES))
def test_a_bad_batch_is_reported_with_its_file(batches_copy, tmp_path, case):
    transform, message = BAD_BATCHES[case]
    marker = tmp_path / "code-was-run"
    batch = batches_copy / "data_batch_3"
    batch.write_bytes(transform(batch.read_bytes(), marker))
    with pytest.raises(UserInputError) as error:
        load_cifar10(batches_copy)
    assert str(batch) in str(error.value) and message in str(error.value)
    assert not marker.exists()


def test_a_missing_batch_is_reported_with_its_file(batches_copy):
    os.remove(batches_copy / "test_batch")
    with pytest.raises(UserInputError, match="test_batch"):
        load_cifar10(batches_copy)


@pytest.mark.parametrize("member_type", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE])
def test_an_archive_member_that_is_not_a_regular_file_is_rejected(tiny_root, tmp_path, member_type):
    special = tarfile.TarInfo(f"{FOLDER_NAME}/data_batch_2")
    special.type = member_type
    special.linkname = "/etc/passwd" if member_type != tarfile.DIRTYPE else ""
    archive = build_archive(tmp_path / ARCHIVE_NAME, tiny_root / FOLDER_NAME, special)
    with pytest.raises(UserInputError) as error:
        load_cifar10(archive)
    assert f"{archive}:{FOLDER_NAME}/data_batch_2: not a regular file" in str(error.value)


def test_an_archive_missing_a_batch_is_reported(tiny_root, tmp_path):
    archive = tmp_path / ARCHIVE_NAME
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tiny_root / FOLDER_NAME / "data_batch_1", arcname=f"{FOLDER_NAME}/data_batch_1")
    expected = f"{archive}: the archive has no member {FOLDER_NAME}/data_batch_2"
    with pytest.raises(UserInputError, match=expected):
        load_cifar10(archive)


def test_a_bad_batch_inside_an_archive_names_the_member(batches_copy, tmp_path):
    (batches_copy / "data_batch_4").write_bytes(b"\x80\x02garbage")
    archive = build_archive(tmp_path / ARCHIVE_NAME, batches_copy)
    with pytest.raises(UserInputError, match=f"{ARCHIVE_NAME}:{FOLDER_NAME}/data_batch_4"):
        load_cifar10(archive)


@pytest.mark.parametrize("damage", [
    lambda data: data[:len(data) // 2],
    lambda data: b"this is not a tar archive at all",
], ids=["truncated", "not a tar"])
def test_a_damaged_archive_is_reported(tiny_root, tmp_path, damage):
    archive = build_archive(tmp_path / ARCHIVE_NAME, tiny_root / FOLDER_NAME)
    archive.write_bytes(damage(archive.read_bytes()))
    with pytest.raises(UserInputError, match=str(archive)):
        load_cifar10(archive)


def test_archive_reading_never_extracts_to_disk(tiny_root, tmp_path, monkeypatch):
    archive = build_archive(tmp_path / "data" / ARCHIVE_NAME, tiny_root / FOLDER_NAME)
    monkeypatch.chdir(tmp_path)
    load_cifar10(archive)
    assert sorted(os.listdir(tmp_path)) == ["data"] and os.listdir(tmp_path / "data") == [ARCHIVE_NAME]

