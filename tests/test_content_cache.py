"""Files made earlier are reused only when what they follow from is unchanged (greedyhash_common.infra.
content_cache), and the suite's weight sets are reused that way (alignment.prepare_weights): never stale."""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from alignment import coverage, worker
from alignment import prepare_weights as preparing
from alignment.cases import Case
from alignment.inputs import write_input_batch
from alignment.paths import coverage_path, images_path, weight_set_files, weights_path, weights_stamp_path
from alignment.pairs.greedyhash import GREEDYHASH as greedyhash
from alignment.pairs.greedyhash import torch_side
from alignment.suite import remove_conversions
from greedyhash_common.state_dicts.paddle_files import read_paddle_state
from greedyhash_common.infra.errors import UserInputError
from greedyhash_common.infra.content_cache import is_fresh, key_of, source_digest, write_stamp

from .conftest import BIT, PROJECT_ROOT
from .hostile_files import flip_a_byte_keeping_times


@pytest.fixture
def made(tmp_path):
    outputs = [tmp_path / "a.bin", tmp_path / "b.bin"]
    for path in outputs:
        path.write_bytes(b"content")
    write_stamp(tmp_path / "stamp.json", key_of({"seed": 0}), outputs)
    return tmp_path / "stamp.json", outputs


def test_outputs_are_fresh_for_the_same_key(made):
    assert is_fresh(made[0], key_of({"seed": 0}), made[1])


@pytest.mark.parametrize("change", ["another key", "output rewritten", "output edited, times kept",
                                    "output truncated", "output deleted", "stamp damaged", "stamp deleted",
                                    "stamp nested too deep"])
def test_any_change_makes_the_outputs_stale(made, change):
    stamp, outputs = made
    key = key_of({"seed": 1} if change == "another key" else {"seed": 0})
    if change == "output rewritten":
        outputs[0].write_bytes(b"CONTENT")
        os.utime(outputs[0], ns=(1, 1))  # the same size and another time
    elif change == "output edited, times kept":
        flip_a_byte_keeping_times(outputs[0])
    elif change == "output truncated":
        outputs[1].write_bytes(b"")
    elif change == "output deleted":
        outputs[1].unlink()
    elif change == "stamp damaged":
        stamp.write_text(stamp.read_text()[:-5])
    elif change == "stamp deleted":
        stamp.unlink()
    elif change == "stamp nested too deep":  # JSON, but json's decoder recurses past Python's limit
        stamp.write_text("[" * 100_000)
    assert not is_fresh(stamp, key, outputs)


def test_the_source_digest_follows_every_byte_and_name_of_the_code(tmp_path):
    package = tmp_path / "package"
    package.mkdir()
    (package / "module.py").write_text("VALUE = 1\n")
    (package / "notes.txt").write_text("not code")
    before = source_digest(tmp_path, ["package"])
    (package / "notes.txt").write_text("still not code")
    assert source_digest(tmp_path, ["package"]) == before
    (package / "module.py").write_text("VALUE = 2\n")
    assert source_digest(tmp_path, ["package"]) != before
    (package / "module.py").rename(package / "renamed.py")
    assert source_digest(tmp_path, ["package"]) != before


def test_the_weight_sets_key_covers_every_module_that_makes_them():
    """An edit to any project module the makers import (the model, the converter, the file formats...) must
    make the weight sets again: each of them is under alignment.prepare_weights.MAKING_CODE."""
    probe = ("import sys, alignment.pairs.greedyhash.weight_makers, alignment.prepare_weights\n"
             "print('\\n'.join(getattr(module, '__file__', None) or '' for module in list(sys.modules.values())))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=PROJECT_ROOT))
    ours = {os.path.relpath(path, PROJECT_ROOT) for path in done.stdout.split()
            if path.startswith(PROJECT_ROOT + os.sep) and ".venv" not in path}
    assert "torch_impl/model.py" in ours and "weights_convert/convert.py" in ours
    uncovered = [path for path in ours
                 if not any(path == entry or path.startswith(entry + os.sep) for entry in preparing.MAKING_CODE)]
    assert uncovered == []


ADAPTER = """
from alignment.pairs.base import ModelPair
from alignment.weight_sets import SEEDED
from greedyhash_common.state_dicts.layout import Layout


class Pair(ModelPair):
    NAME, STEPS, OUTPUTS, WEIGHT_SETS, DEFAULT_SIZES = "users-linear", ("forward",), ("logits",), (SEEDED,), (4,)

    def build(self, framework):
        import torch
        model = torch.nn.Linear(4, 2)
        torch.nn.init.constant_(model.weight, WEIGHT)
        return model

    def layout(self, state=None, framework=None):
        return Layout("users-linear", {"weight": "weight", "bias": "bias"}, ("weight",), {"weight": (2, 4), "bias": (2,)})
"""


def test_a_users_adapter_edited_between_runs_makes_its_weight_sets_again(tmp_path, monkeypatch):
    """An adapter outside alignment/pairs (--model module:Class) is not in MAKING_CODE: its model's edit (a larger
    initialization, say, to reach a ReLU6's clamp) must make the seeded set again, as a run keeps its .pth."""
    import importlib

    from alignment.pairs import pair_named

    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "users_pairs").mkdir()
    (tmp_path / "users_pairs" / "__init__.py").write_text("")
    adapter, workdir = tmp_path / "users_pairs" / "linear.py", str(tmp_path / "run")
    made = []
    for weight in ("0.5", "0.5", "3.0"):
        adapter.write_text(f"WEIGHT = {weight}\n{ADAPTER}")
        importlib.invalidate_caches()
        importlib.reload(importlib.import_module("users_pairs.linear"))
        made.append(preparing.prepare_weights(0, 0, workdir, ["seeded"], pair=pair_named("users_pairs.linear:Pair")))
    assert made == [["seeded"], [], ["seeded"]]
    assert np.allclose(read_paddle_state(weights_path(workdir, 0, "seeded", ".pdparams"))["weight"], 3.0)


def _stamp_key(workdir, weight_set):
    with open(weights_stamp_path(workdir, BIT, weight_set), encoding="utf-8") as handle:
        return json.load(handle)["key"]


@pytest.mark.slow
def test_weight_sets_are_made_once_and_again_only_when_their_content_changes(tmp_path):
    workdir = str(tmp_path)
    write_input_batch(workdir, greedyhash, None, 4, (), greedyhash.WEIGHT_SETS)
    sets = ("seeded", "rescaled")
    assert preparing.prepare_weights(BIT, 0, workdir, sets, pair=greedyhash) == list(sets)
    assert preparing.prepare_weights(BIT, 0, workdir, sets, pair=greedyhash) == []
    assert preparing.prepare_weights(BIT, 1, workdir, sets, pair=greedyhash) == list(sets)  # another seed
    assert preparing.prepare_weights(BIT, 1, workdir, sets, threads=2, pair=greedyhash) == ["rescaled"]
    seeded_key = _stamp_key(workdir, "seeded")
    # another batch: the rescaled set is rescaled on it, the seeded set does not depend on it
    images = np.load(images_path(workdir, 224))
    np.save(images_path(workdir, 224), images[::-1])
    assert preparing.prepare_weights(BIT, 1, workdir, sets, threads=2, pair=greedyhash) == ["rescaled"]
    assert _stamp_key(workdir, "seeded") == seeded_key
    # a weights file replaced by someone else is not trusted
    with open(weights_path(workdir, BIT, "seeded", ".pdparams"), "ab") as handle:
        handle.write(b"\0")
    assert preparing.prepare_weights(BIT, 1, workdir, sets, threads=2, pair=greedyhash) == ["seeded"]


def test_a_folder_where_a_run_removes_a_conversion_is_refused_in_one_line(tmp_path):
    """What a run removes when it ends, found as a folder (a hostile or mistaken workdir): one line naming
    it, not a traceback; the files before it removed as asked."""
    workdir = str(tmp_path)
    paddle_file = weights_path(workdir, BIT, "seeded", ".pdparams")
    os.makedirs(os.path.join(paddle_file, "inside"))
    stamp = weights_stamp_path(workdir, BIT, "seeded", ".pdparams")
    with open(stamp, "w", encoding="utf-8") as handle:
        handle.write("{}")
    with pytest.raises(UserInputError, match=rf"^{paddle_file}: cannot be removed \(Is a directory\);"):
        remove_conversions(workdir, BIT, ["seeded"])
    assert not os.path.exists(stamp)


@pytest.mark.slow
def test_a_conversion_a_run_removed_is_made_again_from_its_pth_alone(tmp_path, monkeypatch):
    """A run removes each set's .pdparams when it ends (alignment.suite.remove_conversions): the next converts
    its .pth again, leaves the .pth as it was, and writes the values the set was made with. About 10 s."""
    workdir = str(tmp_path)
    write_input_batch(workdir, greedyhash, None, 4, (), greedyhash.WEIGHT_SETS)
    preparing.prepare_weights(BIT, 0, workdir, ["seeded"], pair=greedyhash)
    torch_file, paddle_file = weight_set_files(workdir, BIT, "seeded")
    made, torch_file_status = read_paddle_state(paddle_file), os.stat(torch_file)
    remove_conversions(workdir, BIT, ["seeded"])
    assert not os.path.exists(paddle_file) and os.path.exists(torch_file)
    monkeypatch.setattr(greedyhash, "make_weight_set", None)  # converted, not made: nothing calls it
    assert preparing.prepare_weights(BIT, 0, workdir, ["seeded"], pair=greedyhash) == ["seeded"]
    assert os.stat(torch_file).st_mtime_ns == torch_file_status.st_mtime_ns
    converted = read_paddle_state(paddle_file)
    assert converted.keys() == made.keys()
    assert [key for key in made if converted[key].dtype != made[key].dtype
            or not np.array_equal(converted[key], made[key])] == []
    # and below float32, as made (alignment.weight_sets): a writer both paths share cannot round them unseen
    assert [key for key, value in converted.items()
            if value.dtype == np.float64 and np.array_equal(value, value.astype(np.float32))] == []
    assert preparing.prepare_weights(BIT, 0, workdir, ["seeded"], pair=greedyhash) == []


def test_a_user_checkpoint_is_converted_again_when_its_bytes_change(tmp_path, weights):
    workdir = str(tmp_path)
    checkpoint = tmp_path / "model.pth"
    checkpoint.write_bytes(open(weights[0], "rb").read())
    assert preparing.prepare_weights(BIT, 0, workdir, ["user"], str(checkpoint), pair=greedyhash) == ["user"]
    assert preparing.prepare_weights(BIT, 0, workdir, ["user"], str(checkpoint), pair=greedyhash) == []
    checkpoint.write_bytes(open(weights[0], "rb").read())  # the same bytes, written again
    assert preparing.prepare_weights(BIT, 0, workdir, ["user"], str(checkpoint), pair=greedyhash) == []
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(UserInputError):  # a damaged checkpoint is refused, not served from the earlier one
        preparing.prepare_weights(BIT, 0, workdir, ["user"], str(checkpoint), pair=greedyhash)


def test_a_missing_user_checkpoint_is_a_one_line_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "alignment.prepare_weights", "--model", "greedyhash", "--bit", str(BIT),
                           "--workdir",
                           str(tmp_path), "--weight-sets", "user", "--weights", str(tmp_path / "absent.pth")],
                          cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=PROJECT_ROOT))
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "absent.pth" in done.stderr


@pytest.fixture(scope="module")
def seeded_workdir(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("coverage"))
    write_input_batch(workdir, greedyhash, None, 4, (), greedyhash.WEIGHT_SETS)
    preparing.prepare_weights(BIT, 0, workdir, ["seeded"], pair=greedyhash)
    return workdir


def test_a_cases_coverage_is_recorded_again_only_when_what_it_follows_from_changes(seeded_workdir, monkeypatch):
    """alignment.worker.write_coverage: the reference's layer record is reused for the same weights, batch,
    masks, precision, code and framework, and recorded again when any of them changes."""
    recorded = []
    monkeypatch.setattr(coverage, "record", lambda side, context: recorded.append(context.dtype) or {"rows": []})
    args = argparse.Namespace(workdir=seeded_workdir, bit=BIT, mask_seed=0, threads=1)
    case = Case("seeded", 224)

    def write(dtype="float32", **changes):
        worker.write_coverage(torch_side, argparse.Namespace(**{**vars(args), **changes}), case,
                            argparse.Namespace(dtype=dtype))
        return len(recorded)

    assert write() == 1
    assert write() == 1
    assert write(mask_seed=1) == 2
    assert write(dtype="float64") == 3
    assert write(threads=2) == 4  # another framework setting
    os.utime(coverage_path(seeded_workdir, case), ns=(1, 1))  # touched only: the same content, reused
    assert write(threads=2) == 4
    flip_a_byte_keeping_times(coverage_path(seeded_workdir, case))  # the record itself edited
    assert write(threads=2) == 5
    monkeypatch.setattr(worker, "COVERAGE_CODE", ("alignment/cases.py",))  # other code
    assert write(threads=2) == 6
    flip_a_byte_keeping_times(weights_path(seeded_workdir, BIT, "seeded", ".pth"))  # weights not made by the suite
    assert write(threads=2) == 7
    assert write(threads=2) == 8
