"""Hostile and careless input (issues 12 and 24), through the real entry points: each refusal exits with status 2
and one `error:` line (Ctrl-C: 130), before any work, and leaves nothing behind."""
import glob
import importlib
import os
import pickle
import re
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from greedyhash_common.app.option_checks import SMALLEST_IMAGE_SIZE
from greedyhash_common.app.prediction import read_image_file
from tests.conftest import PROJECT_ROOT, run_module
from tests.hostile_files import assert_refused, write_cifar_batches, write_forged_pdparams, write_png_header_only
from tests.tiny_runs import BIT, FRAMEWORKS, LAST, tiny_options, trained_on_first_use

SIZE_MESSAGE = f"AlexNet needs images of at least {SMALLEST_IMAGE_SIZE} px"
CHECKPOINT_SUFFIX = {"torch": ".pth", "paddle": ".pdparams"}


@pytest.fixture(scope="module")
def one_epoch_run(module_tmp, split_file):
    """framework -> the folder of a finished 1-epoch tiny run (trained on first use)."""
    return trained_on_first_use(lambda framework: module_tmp(f"{framework}-run") / "run", split_file, epochs=1)


def placeholder_checkpoint(folder, framework):
    """A file where a checkpoint is expected: options are checked before it is read."""
    path = folder / f"model{CHECKPOINT_SUFFIX[framework]}"
    path.write_bytes(b"")
    return str(path)


def test_the_smallest_image_size_is_the_one_alexnet_accepts():
    import torch

    from torch_impl.model import GreedyHash

    features = GreedyHash(BIT).alex.features
    assert features(torch.zeros(1, 3, SMALLEST_IMAGE_SIZE, SMALLEST_IMAGE_SIZE)).shape[-2:] == (1, 1)
    with pytest.raises(RuntimeError):
        features(torch.zeros(1, 3, SMALLEST_IMAGE_SIZE - 1, SMALLEST_IMAGE_SIZE - 1))


# ------------------------------------------------------------------------------------------------------------
# A crafted .pdparams: an object dtype whose flags deny holding objects crashed every Paddle file reader.

@pytest.mark.slow
@pytest.mark.parametrize("module, arguments", [
    ("weights_convert", ["paddle2torch", "{forged}", "{out}/converted.pth"]),
    ("paddle_impl.eval", ["--checkpoint", "{forged}", "--bit", BIT, "--engine", "dynamic", "--json", "{out}/e.json"]),
    ("paddle_impl.predict", ["--checkpoint", "{forged}", "--bit", BIT, "--index", 0, "--output", "{out}/grid.png"]),
    ("paddle_impl.export", ["--checkpoint", "{forged}", "--bit", BIT, "--output-dir", "{out}/export"]),
    ("paddle_impl.train", ["--pretrained", "{forged}", "--bit", BIT, "--output-dir", "{out}/run"]),
    ("paddle_impl.train", ["--resume", "{forged}"]),
])
def test_a_forged_dtype_is_refused_by_every_paddle_file_reader(module, arguments, tmp_path):
    forged = write_forged_pdparams(tmp_path / "forged.pdparams")
    out = tmp_path / "out"
    out.mkdir()
    completed = run_module(module, *[str(argument).format(forged=forged, out=out) for argument in arguments])
    assert_refused(completed, f"{forged}: not a readable pickle of numpy arrays", "dtype 'O8'")
    assert os.listdir(out) == []


# ------------------------------------------------------------------------------------------------------------
# Image sizes below what AlexNet accepts, bit lengths and counts: refused before any work, by every tool.

@pytest.mark.slow
@pytest.mark.parametrize("module, arguments, message", [
    ("paddle_impl.eval", ["--checkpoint", "{paddle}", "--image-size", 32, "--engine", "dynamic"], SIZE_MESSAGE),
    ("paddle_impl.predict", ["--checkpoint", "{paddle}", "--image-size", 62, "--index", 0], SIZE_MESSAGE),
    ("paddle_impl.export", ["--checkpoint", "{paddle}", "--image-size", 32, "--output-dir", "{out}/x"], SIZE_MESSAGE),
    ("torch_impl.eval", ["--checkpoint", "{torch}", "--image-size", 32], SIZE_MESSAGE),
    ("paddle_impl.train", ["--image-size", 32, "--output-dir", "{out}/run"], SIZE_MESSAGE),
    ("torch_impl.train", ["--image-size", 10, "--output-dir", "{out}/run"], SIZE_MESSAGE),
    ("alignment", ["--sizes", 10, "--workdir", "{out}/logs"], f"--sizes 10: {SIZE_MESSAGE}"),
    ("alignment", ["--sizes", "224,0", "--workdir", "{out}/logs"], f"--sizes 0: {SIZE_MESSAGE}"),
    ("alignment", ["--sizes", "224,big", "--workdir", "{out}/logs"], "--sizes 224,big: give image sizes in pixels"),
    ("alignment", ["--weight-sets", "seeded,trained", "--workdir", "{out}/logs"],
     "unknown weight sets trained; choose from seeded, rescaled"),
    ("alignment", ["--bulk-size", 32, "--workdir", "{out}/logs"], f"--bulk-size 32: {SIZE_MESSAGE}"),
    ("alignment", ["--batch-size", 0, "--workdir", "{out}/logs"], "--batch-size 0: must be a positive integer"),
    ("alignment", ["--bit", 13, "--workdir", "{out}/logs"], "--bit 13: the code length must be one of 12, 24"),
    ("alignment.layers", ["--sizes", 10, "--workdir", "{out}/logs"], f"--sizes 10: {SIZE_MESSAGE}"),
])
def test_sizes_and_bit_lengths_are_checked_before_any_work(module, arguments, message, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    checkpoints = {framework: placeholder_checkpoint(tmp_path, framework) for framework in FRAMEWORKS}
    completed = run_module(module, *[str(argument).format(out=out, **checkpoints) for argument in arguments])
    assert_refused(completed, message)
    assert os.listdir(out) == []


# ------------------------------------------------------------------------------------------------------------
# Output paths that cannot be written: refused at the start, not after the work (or with a traceback).

def write_export_metadata(folder):
    folder.mkdir()
    (folder / "export.json").write_text('{"image_size": 64, "bit": 12}')
    return str(folder)


@pytest.mark.slow
@pytest.mark.parametrize("module, arguments, message", [
    ("paddle_impl.train", ["--bit", BIT, "--output-dir", "{file}"], "--output-dir {file}: a file, not a folder"),
    ("torch_impl.train", ["--bit", BIT, "--output-dir", "/proc/greedyhash/run"],
     "--output-dir /proc/greedyhash/run: cannot write in /proc"),
    ("paddle_impl.eval", ["--checkpoint", "{paddle}", "--json", "{folder}"], "--json {folder}: a folder, not a file"),
    ("torch_impl.eval", ["--checkpoint", "{torch}", "--json", "{file}/x.json"], "--json {file}/x.json: {file} is a file"),
    ("paddle_impl.predict", ["--checkpoint", "{paddle}", "--index", 0, "--output", "{folder}"],
     "--output {folder}: a folder, not a file"),
    ("paddle_impl.export", ["--checkpoint", "{paddle}", "--output-dir", "{file}"], "--output-dir {file}: a file"),
    ("paddle_impl.infer", ["--model-dir", "{export}", "--index", 0, "--json", "{folder}"], "--json {folder}: a folder"),
    ("greedyhash_common.data.split", ["--out", "{folder}"], "--out {folder}: a folder, not a file"),
    ("weights_convert", ["paddle2torch", "{paddle}", "{folder}"], "target {folder}: a folder, not a file"),
    ("tools.lite_chain", ["--workdir", "{file}"], "--workdir {file}: a file, not a folder"),
])
def test_unusable_output_paths_are_refused_before_the_work(module, arguments, message, tmp_path):
    folder, file = tmp_path / "folder", tmp_path / "file"
    folder.mkdir()
    file.write_text("keep me")
    names = {"folder": folder, "file": file, "export": write_export_metadata(tmp_path / "export"),
             **{framework: placeholder_checkpoint(tmp_path, framework) for framework in FRAMEWORKS}}
    completed = run_module(module, *[str(argument).format(**names) for argument in arguments])
    assert_refused(completed, message.format(**names))
    assert os.listdir(folder) == [] and file.read_text() == "keep me"


# ------------------------------------------------------------------------------------------------------------
# Resume: a configuration file cannot change a resumed run.

@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_resume_refuses_a_configuration_file(framework, one_epoch_run):
    run_dir = one_epoch_run(framework)
    before = sorted(os.listdir(run_dir))
    completed = run_module(f"{framework}_impl.train", "--resume", run_dir, "--config",
                           os.path.join(PROJECT_ROOT, "configs", "bit12.yaml"))
    assert_refused(completed, "--config", "a resumed run keeps its configuration")
    assert sorted(os.listdir(run_dir)) == before


# ------------------------------------------------------------------------------------------------------------
# Checkpoint records crafted or damaged inside: refused with one line, not a KeyError.

def write_record(framework, content, path):
    if framework == "torch":
        import torch

        torch.save(content, path)
    else:
        with open(path, "wb") as handle:
            pickle.dump(content, handle, protocol=4)


def read_record(framework, path):
    if framework == "torch":
        import torch

        return torch.load(path, weights_only=True)
    from greedyhash_common.infra.safe_pickle import load_numpy_only

    return load_numpy_only(path, encoding="latin1")


def small_record(framework, run_dir):
    """A training checkpoint's record without its 450 MB of weights: the run's saved configuration and the
    fields of a run after one epoch (enough for every check made before the weights are restored)."""
    import yaml

    from greedyhash_common.app.training import checkpoint_record

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    rng = [{"python": None, "numpy": None, "framework": None}]
    return {**checkpoint_record(framework, 0, config, 0.5, [{"epoch": 1, "loss": 2.0}], rng),
            "model": {}, "optimizer": {}, "scheduler": {}}


CRAFTED_RECORDS = {
    "config without bit": (lambda content: content["config"].pop("bit"), "configuration lacks bit"),
    "config without split_file": (lambda content: content["config"].pop("split_file"), "lacks split_file"),
    "bad lr in config": (lambda content: content["config"].update(lr="fast"), "lr: not a number"),
    "negative epoch": (lambda content: content.update(epoch=-3), "malformed: epoch"),
    "history of lists": (lambda content: content.update(history=[[1, 2]]), "malformed: history"),
    "empty rng": (lambda content: content.update(rng=[]), "malformed: rng"),
}


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("crafted", sorted(CRAFTED_RECORDS))
def test_a_crafted_checkpoint_record_is_refused_on_resume(framework, crafted, one_epoch_run, tmp_path, capsys):
    # The module's main in this process: a dozen fresh interpreters would cost minutes of imports.
    train = importlib.import_module(f"{framework}_impl.train")
    change, message = CRAFTED_RECORDS[crafted]
    content = small_record(framework, one_epoch_run(framework))
    change(content)
    crafted_path = tmp_path / LAST[framework]
    write_record(framework, content, crafted_path)
    with pytest.raises(SystemExit) as stopped:
        train.main(["--resume", str(crafted_path), "--epochs", "2", "--threads", "2"])
    completed = subprocess.CompletedProcess([], stopped.value.code, "", capsys.readouterr().err)
    assert_refused(completed, str(crafted_path), message)
    assert sorted(os.listdir(tmp_path)) == [LAST[framework]]


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_malformed_random_number_states_are_refused_on_resume(framework, one_epoch_run, tmp_path):
    content = read_record(framework, one_epoch_run(framework) / LAST[framework])
    content["rng"][0].update(python=[1], numpy=[2])
    crafted_path = tmp_path / LAST[framework]
    write_record(framework, content, crafted_path)
    completed = run_module(f"{framework}_impl.train", "--resume", crafted_path, "--epochs", 2, "--threads", 2)
    assert_refused(completed, str(crafted_path), "the random-number states in the checkpoint do not fit")
    assert sorted(os.listdir(tmp_path)) == [LAST[framework]]


# ------------------------------------------------------------------------------------------------------------
# Leftovers: temporary files of a killed write, the files of a failed or unfinished start.

@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_temporary_file_of_a_killed_checkpoint_write_is_removed_on_the_next_start(framework, one_epoch_run):
    run_dir = one_epoch_run(framework)
    leftover = run_dir / f".tmp-k1ll3d{os.path.splitext(LAST[framework])[1]}"
    leftover.write_bytes(b"\0" * 4096)  # what a SIGKILL during save_checkpoint leaves
    completed = run_module(f"{framework}_impl.train", "--resume", run_dir, "--threads", 2)
    assert completed.returncode == 0, completed.stderr
    assert "nothing to train" in completed.stdout
    assert not leftover.exists()


@pytest.mark.slow
def test_an_unfinished_start_is_replaced_by_the_next_fresh_run(split_file, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("# a start killed before its first checkpoint\n")
    (run_dir / "split.npz").write_bytes(b"half-written")  # at the run's own split path
    (run_dir / ".tmp-abc.npz").write_bytes(b"half")
    options = tiny_options(split_file, run_dir, epochs=1)
    without_split = [value for index, value in enumerate(options)
                     if "--split-file" not in (options[index], options[index - 1] if index else None)]
    completed = run_module("paddle_impl.train", *without_split, "--protocol", "cifar10-2")
    assert completed.returncode == 0, completed.stderr
    assert sorted(os.listdir(run_dir)) == ["best.pdparams", "config.yaml", "history.json", "last.pdstate",
                                           "split.npz"]


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_failed_start_leaves_no_run_folder(framework, split_file, tmp_path):
    run_dir = tmp_path / "run"
    completed = run_module(f"{framework}_impl.train", *tiny_options(split_file, run_dir), "--pretrained",
                           tmp_path / "missing_backbone")
    assert_refused(completed, "missing_backbone: no such file")
    assert not run_dir.exists()


@pytest.mark.slow
def test_the_suite_refuses_bad_weights_before_writing_anything(tmp_path):
    forged = write_forged_pdparams(tmp_path / "forged.pdparams")
    workdir = tmp_path / "logs"
    completed = run_module("alignment", "--weights", forged, "--workdir", workdir, "--steps", "forward",
                           "--sizes", 64)
    assert_refused(completed, "preparing the weights failed", "not a readable pickle of numpy arrays")
    assert not workdir.exists()


# ------------------------------------------------------------------------------------------------------------
# Ctrl-C: one line and status 130, and a fresh run interrupted before its first checkpoint leaves nothing.

@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_ctrl_c_stops_training_with_one_line(framework, tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", f"{framework}_impl.train", "--bit", str(BIT), "--epochs", "50", "--output-dir",
               str(run_dir), "--threads", "1"]
    # A shell may start background jobs with SIGINT ignored; the run must see it as a terminal sends it.
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=dict(os.environ, PYTHONPATH=PROJECT_ROOT),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not (run_dir / "config.yaml").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    completed = subprocess.CompletedProcess(command, process.returncode, "", stderr)
    assert_refused(completed, status=130, prefix="interrupted (Ctrl-C)")
    assert not run_dir.exists()


# ------------------------------------------------------------------------------------------------------------
# Messages that named the wrong thing, or several lines of another library's advice.

@pytest.mark.slow
def test_torch_reading_a_paddle_file_or_garbage_says_so_in_one_line(tmp_path):
    paddle_file = tmp_path / "model.pdparams"
    with open(paddle_file, "wb") as handle:
        pickle.dump({"alex.features.0.weight": np.zeros((2, 2), np.float32)}, handle, protocol=4)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x80\x02" + os.urandom(64))
    for source, message in ((paddle_file, "a Paddle file (a pickle of numpy arrays), not a torch checkpoint"),
                            (garbage, "not a readable torch checkpoint")):
        completed = run_module("weights_convert", "torch2paddle", source, tmp_path / "out.pdparams")
        assert_refused(completed, f"{source}: {message}")
    assert sorted(os.listdir(tmp_path)) == ["garbage.pth", "model.pdparams"]


def test_a_torch_file_given_to_the_paddle_side_is_named(split_file, tmp_path):
    torch_file = tmp_path / "alexnet.pth"
    with zipfile.ZipFile(torch_file, "w") as archive:  # torch.save writes zip archives
        archive.writestr("alexnet/data.pkl", b"")
    completed = run_module("paddle_impl.train", *tiny_options(split_file, tmp_path / "run"), "--pretrained",
                           torch_file)
    assert_refused(completed, f"{torch_file}: a torch checkpoint, not a Paddle one")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_cifar_batches_of_pickle_protocol_2_are_read_and_too_few_images_name_the_way_out(tmp_path):
    data = write_cifar_batches(tmp_path / "data", images_per_class=1, protocol=2)
    completed = run_module("greedyhash_common.data.split", "--data", data, "--query-per-class", 1, "--train-per-class",
                           1, "--out", tmp_path / "split.npz")
    assert completed.returncode == 0, completed.stderr
    completed = run_module("torch_impl.train", "--bit", BIT, "--data", data, "--output-dir", tmp_path / "run")
    assert_refused(completed, "fewer than the 600 this split needs", "--split-file")
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------------------------
# Images: a decompression bomb is refused; 16-bit grey is scaled, not clipped to white.

def test_a_decompression_bomb_is_refused_in_one_line(tmp_path):
    bomb = write_png_header_only(tmp_path / "bomb.png", 20000, 20000)  # 400 megapixels
    completed = run_module("paddle_impl.predict", "--checkpoint", placeholder_checkpoint(tmp_path, "paddle"),
                           "--image", bomb, "--output", tmp_path / "grid.png")
    assert_refused(completed, f"{bomb}: too large an image")
    assert not (tmp_path / "grid.png").exists()


def test_a_sixteen_bit_grey_image_reads_as_its_eight_bit_equivalent(tmp_path):
    from PIL import Image

    ramp = np.linspace(0, 65535, 40 * 40).reshape(40, 40).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "grey16.png")
    Image.fromarray(np.round(ramp / 257).astype(np.uint8)).save(tmp_path / "grey8.png")
    sixteen, eight = read_image_file(tmp_path / "grey16.png"), read_image_file(tmp_path / "grey8.png")
    assert np.abs(sixteen.astype(int) - eight.astype(int)).max() <= 1
    assert 100 < sixteen.mean() < 155  # a ramp through grey; clipping made it about 254


@pytest.mark.parametrize("module", ["paddle_impl.eval", "torch_impl.eval"])
def test_the_error_is_one_line_whatever_thread_count_the_shell_sets(module, monkeypatch):
    """Paddle prints two lines at import when OMP_NUM_THREADS is above 1, unless the import is quieted."""
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert_refused(run_module(module, "--checkpoint", "/nonexistent/best"), "/nonexistent/best: no such checkpoint")


# ------------------------------------------------------------------------------------------------------------
# Issue 24. argparse's own refusals (a value out of range, an unknown or missing option): one line, exit 2,
# from every entry point, as any other bad input.

def _parser(module, factory="get_args_parser", *arguments):
    return lambda: getattr(importlib.import_module(module), factory)(*arguments)


@pytest.mark.parametrize("make_parser, argv, fragment", [
    (_parser("greedyhash_common.app.train_config", "get_args_parser", "torch"), ["--epochs", "0"],
     "argument --epochs: must be a positive integer, got 0"),
    (_parser("greedyhash_common.app.train_config", "get_args_parser", "paddle"), ["--lr", "nan"],
     "argument --lr: must be a positive finite number, got nan"),
    (_parser("greedyhash_common.app.cli_options", "get_predict_args_parser", "torch"), ["--index", "-1"],
     "argument --index: must be a non-negative integer, got -1"),
    (_parser("greedyhash_common.app.cli_options", "get_eval_args_parser", "paddle"), ["--bogus"],
     "unrecognized arguments: --bogus"),
    (_parser("tools.lite_chain"), ["--threads", "0"], "argument --threads: must be a positive integer, got 0"),
    (_parser("tools.gpu_check"), ["--batch-size", "0"], "argument --batch-size: must be a positive integer, got 0"),
    (_parser("tools.gpu_check"), ["--bit", "13"], "argument --bit: must be one of 12, 24, 32, 48, got 13"),
    (_parser("alignment.suite"), ["--bogus"], "unrecognized arguments: --bogus"),
    (_parser("alignment.worker"), ["tensorflow"], "argument framework: invalid choice: 'tensorflow'"),
    (_parser("alignment.prepare_weights"), [], "the following arguments are required: --bit, --workdir"),
    (_parser("weights_convert.__main__"), ["torch2tf", "a", "b"], "argument direction: invalid choice: 'torch2tf'"),
])
def test_an_option_argparse_refuses_is_one_line_and_status_2(make_parser, argv, fragment, capsys):
    with pytest.raises(SystemExit) as stopped:
        make_parser().parse_args(argv)
    error = capsys.readouterr().err
    assert stopped.value.code == 2 and error.count("\n") == 1 and error.startswith("error: ") and fragment in error, \
        error


def test_every_entry_point_parses_with_the_one_line_parser():
    """A plain argparse.ArgumentParser prints its usage block on a bad option: none is left in the product."""
    plain = []
    for root, folders, files in os.walk(PROJECT_ROOT):
        folders[:] = [folder for folder in folders if not folder.startswith(".") and folder not in ("tests", "logs")]
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(root, name), encoding="utf-8") as handle:
                    if "argparse.ArgumentParser(" in handle.read():
                        plain.append(os.path.relpath(os.path.join(root, name), PROJECT_ROOT))
    assert plain == []


# ------------------------------------------------------------------------------------------------------------
# No tool writes over its own input; a converted file carries the suffix of its format.

def _same_file_names(tmp_path, name):
    """(source, [other names of the same file]): the path itself, ./, a symbolic and a hard link."""
    source = tmp_path / name
    source.write_bytes(b"the user's only copy")
    (tmp_path / f"symlink-{name}").symlink_to(source)
    os.link(source, tmp_path / f"hardlink-{name}")
    return source, [str(source), os.path.join(".", os.path.relpath(source)), str(tmp_path / f"symlink-{name}"),
                    str(tmp_path / f"hardlink-{name}")]


@pytest.mark.parametrize("direction, suffix", [("paddle2torch", ".pth"), ("torch2paddle", ".pdparams")])
def test_the_converter_refuses_to_write_over_its_source_under_any_name(direction, suffix, tmp_path, capsys):
    from weights_convert.__main__ import main

    source, names = _same_file_names(tmp_path, f"X{suffix}")
    for target in names:
        with pytest.raises(SystemExit) as stopped:
            main([direction, str(source), target])
        assert stopped.value.code == 2
        assert f"the same file as the input {source}" in capsys.readouterr().err
    assert source.read_bytes() == b"the user's only copy"


@pytest.mark.parametrize("direction, target, suffix", [("torch2paddle", "out.pth", ".pdparams"),
                                                       ("paddle2torch", "out.pdparams", ".pth"),
                                                       ("torch2paddle", "out", ".pdparams")])
def test_the_converter_refuses_a_target_named_for_the_other_format(direction, target, suffix, tmp_path, capsys):
    from weights_convert.__main__ import main

    (tmp_path / "in.pth").write_bytes(b"")
    with pytest.raises(SystemExit) as stopped:
        main([direction, str(tmp_path / "in.pth"), str(tmp_path / target)])
    assert stopped.value.code == 2 and f"{direction} writes a {suffix} file" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["in.pth"]


def test_the_user_weight_set_is_never_written_over_its_source(tmp_path, capsys):
    from alignment.paths import weights_path
    from alignment.prepare_weights import main

    source = weights_path(str(tmp_path), 48, "user", ".pth")
    os.makedirs(os.path.dirname(source))
    with open(source, "wb") as handle:
        handle.write(b"the user's only copy")
    with pytest.raises(SystemExit) as stopped:
        main(["--bit", "48", "--workdir", str(tmp_path), "--weights", source, "--weight-sets", "user", "--model",
              "greedyhash"])
    assert stopped.value.code == 2 and "the same file as the input" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------------------
# Checkpoints a careless user or another tool writes: bfloat16 is read as float32 (exact, every bfloat16 value
# is a float32 one), a tensor numpy cannot hold and a key that is not a name are refused by name.

def test_a_bfloat16_checkpoint_reads_as_float32_and_says_so(tmp_path, capsys):
    import torch

    from torch_impl.torch_files import read_torch_state

    weight = torch.tensor([[1.5, -2.25], [3e38, 1e-38]]).to(torch.bfloat16)
    torch.save({"layer.weight": weight, "layer.steps": torch.tensor([3])}, tmp_path / "bf16.pth")
    state = read_torch_state(str(tmp_path / "bf16.pth"))
    assert state["layer.weight"].dtype == np.float32 and state["layer.steps"].dtype == np.int64
    np.testing.assert_array_equal(state["layer.weight"], weight.float().numpy())
    assert "bfloat16 tensors read as float32 (exactly): layer.weight\n" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ("sparse", "layer.weight is a torch.sparse_coo tensor; save dense weights"),
    ("integer keys", "keys that are not parameter names: 0, 1 (a state dict maps names to tensors)"),
    ("float8", "layer.weight of dtype torch.float8_e4m3fn has no numpy equivalent"),
])
def test_a_checkpoint_numpy_cannot_hold_is_refused_by_name(content, message, tmp_path):
    import torch

    from greedyhash_common.infra.errors import UserInputError
    from torch_impl.torch_files import read_torch_state

    weight = torch.eye(3)
    saved = {"sparse": {"layer.weight": weight.to_sparse(), "layer.bias": torch.zeros(3)},
             "integer keys": {0: weight, 1: torch.zeros(3)},
             "float8": {"layer.weight": weight.to(torch.float8_e4m3fn)}}[content]
    torch.save(saved, tmp_path / "odd.pth")
    with pytest.raises(UserInputError, match=re.escape(message)):
        read_torch_state(str(tmp_path / "odd.pth"))


@pytest.mark.slow
@pytest.mark.parametrize("module, arguments", [
    ("weights_convert", ["torch2paddle", "{odd}", "{out}/converted.pdparams"]),
    ("torch_impl.eval", ["--checkpoint", "{odd}", "--bit", BIT, "--json", "{out}/e.json"]),
    ("alignment.prepare_weights", ["--bit", BIT, "--workdir", "{out}", "--weights", "{odd}", "--weight-sets", "user",
                                   "--model", "greedyhash"]),
])
def test_an_integer_keyed_checkpoint_is_one_line_through_every_reader(module, arguments, tmp_path):
    import torch

    odd = tmp_path / "intkeys.pth"
    torch.save({0: torch.eye(3)}, odd)
    out = tmp_path / "out"
    out.mkdir()
    completed = run_module(module, *[str(argument).format(odd=odd, out=out) for argument in arguments])
    assert_refused(completed, "keys that are not parameter names: 0")
    assert [name for name in os.listdir(out) if name != "inputs"] == []


# ------------------------------------------------------------------------------------------------------------
# --model: an adapter that cannot be imported, or is incomplete, says which and why, before any work.

ADAPTERS = {
    "raises": "raise RuntimeError('the adapter is broken')\n",
    "syntax": "def side(:\n",
    "needs": "import a_module_nobody_installed\n",
    "incomplete": "class Pair:\n    NAME = 'x'\n",
    "abstract": "from alignment.pairs.base import ModelPair\n\n\nclass Pair(ModelPair):\n    NAME = 'x'\n",
    "empty": "from alignment.pairs.base import ModelPair\n\n\nclass Pair(ModelPair):\n    NAME = 'x'\n"
             "    DEFAULT_SIZES = ()\n\n    def build(self, framework):\n        import importlib\n\n"
             "        return importlib.import_module(f'{framework}.nn').Identity()\n",
}


@pytest.mark.parametrize("adapter, message", [
    ("raises", "importing the adapter hostile_adapters.raises failed: RuntimeError: the adapter is broken"),
    ("syntax", "the adapter does not compile: "),
    ("needs", "the adapter hostile_adapters.needs needs a module that is not installed (No module named "
              "'a_module_nobody_installed')"),
    ("missing", "no such adapter module (No module named 'hostile_adapters.missing')"),
    ("incomplete", "hostile_adapters.incomplete has no ModelPair subclass Pair"),
    ("abstract", "the adapter's Pair does not define build (alignment.pairs.base)"),
    ("empty", "the adapter's DEFAULT_SIZES name(s) nothing"),
])
def test_a_broken_adapter_is_named_with_its_reason(adapter, message, tmp_path, monkeypatch):
    from alignment.pairs import pair_named
    from greedyhash_common.infra.errors import UserInputError

    package = tmp_path / "hostile_adapters"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, source in ADAPTERS.items():
        (package / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in [name for name in sys.modules if name.split(".")[0] == "hostile_adapters"]:
        monkeypatch.delitem(sys.modules, module)  # the package of an earlier case, in another folder
    with pytest.raises(UserInputError, match=re.escape(message)):
        pair_named(f"hostile_adapters.{adapter}:Pair")


def test_a_pair_that_names_an_unknown_step_is_refused_before_any_file(tmp_path):
    workdir = tmp_path / "run"
    completed = run_module("alignment", "--model", "tests.test_hostile_input:UnknownStepPair", "--workdir", workdir)
    assert_refused(completed, "the pair tiny-mlp runs nosuchstep: neither the suite's steps")
    assert not workdir.exists()


def _unknown_step_pair():
    from tests.test_model_pairs import TinyPair

    class UnknownStepPair(TinyPair):
        STEPS = ("forward", "nosuchstep")

    return UnknownStepPair


UnknownStepPair = _unknown_step_pair()


# ------------------------------------------------------------------------------------------------------------
# tools.gpu_check: every option checked before the inputs are written; a side that fails says how.

@pytest.mark.parametrize("arguments, message", [
    (["--size", "10"], "--size 10: AlexNet needs images of at least"),
    (["--device", "gpu"], "--device gpu: this machine has no NVIDIA GPU"),
    (["--torch-python", "/nonexistent/python"], "--torch-python /nonexistent/python: no such program"),
    (["--paddle-python", "{tmp}/python.txt"], "--paddle-python {tmp}/python.txt: no such program: not an executable"),
])
def test_gpu_check_refuses_bad_options_before_any_work(arguments, message, tmp_path):
    if arguments[0] == "--device" and glob.glob("/dev/nvidia[0-9]*"):
        pytest.skip("this machine has a GPU")
    (tmp_path / "python.txt").write_text("not a program")
    workdir = tmp_path / "gpu-check"
    assert_refused(run_module("tools.gpu_check", "--workdir", workdir, *[argument.format(tmp=tmp_path)
                                                                         for argument in arguments]),
                   message.format(tmp=tmp_path))
    assert not workdir.exists()


@pytest.mark.parametrize("status, stderr, reason", [
    (1, "", "exit status 1; it wrote nothing to stderr"),
    (1, "Traceback (most recent call last):\n  File x\nKeyError: 0\n", "exit status 1; its last message: KeyError: 0"),
    (2, "note: something\nerror: x.pth: keys that are not parameter names: 0\n",
     "x.pth: keys that are not parameter names: 0"),
    (-9, "", "killed by signal 9; it wrote nothing to stderr"),
])
def test_a_failed_child_process_is_one_line_saying_how_it_ended(status, stderr, reason):
    from greedyhash_common.infra.errors import child_failure

    assert child_failure(status, stderr) == reason
