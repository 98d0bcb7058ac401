"""Hostile and careless runs (issue 24): a workdir shared by two runs, a cache edited behind the suite's back,
data files that never end, a suite killed or unable to start a side, SIGTERM and a full disk while writing.
Each ends as a clean refusal (exit 2, one line) or the right result, never as a verdict on another run's or
a stale file's values, and leaves no process and no half-written file behind."""
import argparse
import errno
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest

from alignment import prepare_weights as preparing, suite
from alignment.paths import weight_set_files, weights_path
from alignment.pairs import pair_named
from alignment.pairs.greedyhash import GREEDYHASH
from greedyhash_common.data import cifar10
from greedyhash_common.data.cifar10 import BATCH_FILE_LIMIT, load_cifar10
from greedyhash_common.infra import atomic
from greedyhash_common.infra.atomic import TEMPORARY_PREFIX, DiskFull, atomic_path, write_text
from greedyhash_common.infra.child_processes import start_child
from greedyhash_common.infra.errors import UserInputError
from greedyhash_common.infra.workdir_lock import LOCK_NAME, holding_workdir
from greedyhash_common.state_dicts.paddle_files import read_paddle_file
from tests.conftest import BIT, PROJECT_ROOT, run_module
from tests.hostile_files import assert_refused, flip_a_byte_keeping_times, write_cifar_batches
from tests.tiny_runs import tiny_options, write_tiny_split

# The smallest suite run that starts both sides: one forward case in float64
SMALL_RUN = ["--steps", "forward", "--dtypes", "float64", "--sizes", "64", "--weight-sets", "seeded", "--no-profile"]
SMALL_CASES = ["--dtypes", "float64", "--sizes", "64", "--weight-sets", "seeded"]
# Every command that writes a work folder, with options that keep it small should it run after all
WORKDIR_WRITERS = {"alignment": SMALL_RUN, "alignment.layers": SMALL_CASES,
                   "alignment.mutation": ["--max", "1", "--sizes", "64", "--weight-sets", "seeded"],
                   "alignment.pairs.greedyhash.curve": ["--epochs", "1", "--seeds", "0", "--eval-every", "1"],
                   "tools.gpu_check": ["--size", "64", "--device", "cpu"], "tools.lite_chain": []}
HOLDER = ("import sys, time\nfrom greedyhash_common.infra.workdir_lock import holding_workdir\n"
          "with holding_workdir(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(600)\n")


def child_environment():
    return dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))


@pytest.fixture
def held(tmp_path):
    """(folder, pid) of a folder held by another process, as a run holds its workdir."""
    folder = tmp_path / "held"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], cwd=PROJECT_ROOT, env=child_environment(),
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    yield folder, holder.pid
    holder.kill()
    holder.wait()


def processes_mentioning(*texts):
    """Pids of the processes whose command line holds every one of `texts` (this one excepted)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    command = handle.read()
            except OSError:
                continue
            if all(text.encode() in command for text in texts):
                found.append(int(entry))
    return found


def snapshot(folder):
    """{path: (size, mtime)} of every file under `folder`."""
    return {os.path.join(root, name): (os.stat(os.path.join(root, name)).st_size,
                                       os.stat(os.path.join(root, name)).st_mtime_ns)
            for root, _, names in os.walk(folder) for name in names}


def wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


# One run per workdir

@pytest.mark.parametrize("module", WORKDIR_WRITERS)
def test_a_run_is_refused_a_workdir_another_run_holds_naming_that_run(held, module):
    folder, holder = held
    before = snapshot(folder)
    completed = run_module(module, *WORKDIR_WRITERS[module], "--workdir", folder, timeout=120)
    assert_refused(completed, f"{folder} is in use by another run (pid {holder}:", "holding_workdir")
    assert snapshot(folder) == before


@pytest.mark.slow
def test_training_is_refused_an_output_dir_another_run_holds(held, tmp_path):
    """About 15 s: torch's import before the run folder is taken."""
    folder, holder = held
    split_file = write_tiny_split(tmp_path / "split.npz")
    completed = run_module("torch_impl.train", *tiny_options(split_file, folder, epochs=1))
    assert_refused(completed, f"--output-dir {folder} is in use by another run (pid {holder}:")
    assert sorted(os.listdir(folder)) == [LOCK_NAME]


def test_a_lock_left_by_a_killed_run_is_taken_over_and_removed_at_the_end(tmp_path):
    folder = tmp_path / "work"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], cwd=PROJECT_ROOT, env=child_environment(),
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert os.listdir(folder) == [LOCK_NAME]  # SIGKILL leaves the file, the kernel releases the lock
    with holding_workdir(str(folder)):
        with pytest.raises(UserInputError, match=f"pid {os.getpid()}:"):
            with holding_workdir(str(folder)):
                pass
    assert os.listdir(folder) == []


def test_a_planted_link_as_the_lock_file_is_refused_and_its_target_untouched(tmp_path):
    folder, target = tmp_path / "work", tmp_path / "notes.txt"
    folder.mkdir()
    target.write_text("my notes\n")
    (folder / LOCK_NAME).symlink_to(target)
    with pytest.raises(UserInputError, match="cannot open its lock file"):
        with holding_workdir(str(folder)):
            pass
    assert target.read_text() == "my notes\n"


@pytest.mark.slow
def test_concurrent_runs_in_one_workdir_are_refused_and_a_killed_suite_leaves_no_side_running(tmp_path, weights):
    """The issue's attacks: a run with NaN weights and a --bit 12 run started beside a running --bit 48 run
    in its --workdir (before: "alignment passed" for the NaN run, a --bit 12 pass on the --bit 48 values)
    are refused naming it; then SIGKILL of that run leaves no side process, nothing written afterwards.
    About 40 s on a loaded machine: one suite run up to its sides."""
    import torch

    nan_weights = tmp_path / "nan.pth"
    state = torch.load(weights[0], weights_only=True)
    torch.save({key: torch.full_like(value, float("nan")) for key, value in state.items()}, nan_weights)
    workdir = tmp_path / "shared"
    running = subprocess.Popen([sys.executable, "-m", "alignment", *SMALL_RUN, "--bit", "48", "--workdir", workdir],
                               cwd=PROJECT_ROOT, env=child_environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(processes_mentioning("alignment.worker\0", str(workdir))) == 2, 240,
                 "both sides of the first run")
        sides = processes_mentioning(str(workdir))
        for attack in (["--weights", nan_weights, "--bit", "48"], ["--bit", "12"]):
            completed = run_module("alignment", *SMALL_RUN, *attack, "--workdir", workdir)
            assert_refused(completed, f"{workdir} is in use by another run (pid {running.pid}:")
        running.send_signal(signal.SIGKILL)
        running.wait()
        wait_for(lambda: not set(sides) & set(processes_mentioning(str(workdir))), 5, "the sides to end")
        left = snapshot(workdir)
        time.sleep(2)
        assert snapshot(workdir) == left  # no survivor writes on
    finally:
        running.kill()
        running.wait()


def test_a_side_that_cannot_start_stops_the_other_with_one_line(tmp_path):
    """--paddle-python /nonexistent/python (before: FileNotFoundError's traceback while the torch side went on
    writing after the command had exited)."""
    workdir = str(tmp_path / "work")
    os.makedirs(workdir)
    args = argparse.Namespace(torch_python=sys.executable, paddle_python="/nonexistent/python", bit=48, workdir=workdir,
                              threads=1, seed=0, weight_sets="seeded", sizes="64", bulk_size=64, model="greedyhash",
                              data=None, in_process=False)
    with pytest.raises(UserInputError, match="--paddle-python /nonexistent/python: cannot start it"):
        suite.run_sides(args, pair_named("greedyhash"), ["forward"], ["float64"])
    assert processes_mentioning(workdir) == []


def test_a_child_asks_to_die_with_its_parent(tmp_path):
    """PR_SET_PDEATHSIG: a child of a process killed with SIGKILL is killed too (a grandchild here, its
    parent the process killed)."""
    script = ("import subprocess, sys, time\nfrom greedyhash_common.infra.child_processes import start_child\n"
              "child = start_child([sys.executable, '-c', 'import time; time.sleep(60)', sys.argv[1]], 'python')\n"
              "print(child.pid, flush=True)\ntime.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=PROJECT_ROOT, env=child_environment(),
                              stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    wait_for(lambda: child not in processes_mentioning(str(tmp_path)), 5, "the child to die with its parent")


def test_a_command_that_cannot_start_names_the_option_that_gave_it():
    with pytest.raises(UserInputError, match=r"^--torch-python /bin/nothing-here: cannot start it \("):
        start_child(["/bin/nothing-here", "-c", "pass"], "--torch-python")


def test_a_side_refusing_ends_the_run_with_its_line_not_a_verdict(tmp_path):
    log = tmp_path / "side_torch.log"
    log.write_text("torch forward seeded-64px float64: 1.0 s\nerror: no space left in /x writing y.npy\n")
    refused = subprocess.Popen([sys.executable, "-c", "raise SystemExit(2)"])
    with pytest.raises(UserInputError, match=r"^the torch side stopped: no space left in /x writing y.npy$"):
        suite.refuse_what_a_side_refused({"torch": (refused, str(log))})


# Caches keyed by content

@pytest.fixture
def prepared(tmp_path, weight_sets):
    """A copy of a workdir's inputs/ holding the seeded and rescaled sets with their stamps."""
    workdir = tmp_path / "work"
    shutil.copytree(os.path.dirname(weight_sets["seeded"][0]), workdir / "inputs")
    assert preparing.prepare_weights(BIT, 0, str(workdir), GREEDYHASH.WEIGHT_SETS, pair=GREEDYHASH) == []
    return str(workdir)


def weights_of(path):
    """{name: array} of a weight file: a torch zip names its records after the temporary file it was written
    to, so two makings of the same weights differ in bytes, not in values."""
    if path.endswith(".pth"):
        from torch_impl.torch_files import read_torch_state

        return read_torch_state(path)
    return read_paddle_file(path)


def assert_same_weights(paths, expected):
    for path, values in zip(paths, expected):
        got = weights_of(path)
        assert got.keys() == values.keys() and all(np.array_equal(got[key], values[key]) for key in values), path


@pytest.mark.slow
def test_the_rescaled_set_copied_over_the_seeded_one_with_its_times_is_made_again(prepared):
    """Before: "reused seeded", and a pass on the rescaled numbers. About 30 s on a loaded machine: the
    seeded set made again."""
    seeded = list(weight_set_files(prepared, BIT, "seeded"))
    original = [weights_of(path) for path in seeded]
    for path in seeded:
        status = os.stat(path)
        shutil.copyfile(path.replace("_seeded", "_rescaled"), path)
        os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert preparing.prepare_weights(BIT, 0, prepared, GREEDYHASH.WEIGHT_SETS, pair=GREEDYHASH) == ["seeded"]
    assert_same_weights(seeded, original)


@pytest.mark.slow
def test_one_weight_changed_with_its_times_kept_is_made_again(prepared):
    """Before: a FAIL blamed on the port. About 15 s: the seeded set made again."""
    path = weights_path(prepared, BIT, "seeded", ".pdparams")
    original = weights_of(path)
    flip_a_byte_keeping_times(path, offset=os.path.getsize(path) // 2)  # inside a weight
    assert preparing.prepare_weights(BIT, 0, prepared, GREEDYHASH.WEIGHT_SETS, pair=GREEDYHASH) == ["seeded"]
    assert_same_weights([path], [original])


# Bounded reads

@pytest.fixture
def cifar_folder(tmp_path):
    write_cifar_batches(str(tmp_path), 2, pickle.HIGHEST_PROTOCOL)
    return tmp_path / "cifar-10-batches-py"


def _replace(path, make):
    os.remove(path)
    make(path)


def read_in_a_limited_process(reader, path):
    """What `reader` (module:function) says of `path`, read in a child process limited to 2 GB of memory and
    60 s, so that a regression (a device read to its end, a FIFO waited on) fails the test, not the machine."""
    module, function = reader.split(":")
    probe = ("import resource, sys\nresource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
             f"from {module} import {function} as read\nfrom greedyhash_common.infra.errors import UserInputError\n"
             "try:\n    read(sys.argv[1])\nexcept UserInputError as error:\n    print(error)\n")
    done = subprocess.run([sys.executable, "-c", probe, str(path)], cwd=PROJECT_ROOT, env=child_environment(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("damage, message", [
    (lambda path: _replace(path, lambda target: os.symlink("/dev/zero", target)), "a device, FIFO or socket"),
    (lambda path: _replace(path, os.mkfifo), "a device, FIFO or socket"),
    (lambda path: os.truncate(path, BATCH_FILE_LIMIT + 1), "larger than a CIFAR-10 batch can be"),
    (lambda path: _replace(path, os.mkdir), "a folder, not a regular file"),
], ids=["link to /dev/zero", "fifo", "sparse and too large", "folder"])
def test_a_cifar_batch_that_is_no_batch_is_refused_before_it_is_read(cifar_folder, damage, message):
    """Before: data_batch_1 linked to /dev/zero grew to 22.6 GB; a FIFO hangs."""
    damage(str(cifar_folder / "data_batch_1"))
    said = read_in_a_limited_process("greedyhash_common.data.cifar10:load_cifar10", cifar_folder)
    assert "data_batch_1: " in said and message in said


def test_a_cifar_archive_too_large_to_be_one_is_refused_before_it_is_read(tmp_path):
    archive = tmp_path / cifar10.ARCHIVE_NAME
    with open(archive, "wb") as handle:
        handle.truncate(cifar10.ARCHIVE_FILE_LIMIT + 1)
    with pytest.raises(UserInputError, match="larger than a CIFAR-10 archive can be"):
        load_cifar10(archive)


def test_a_cifar_archive_member_too_large_to_be_a_batch_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar10, "BATCH_FILE_LIMIT", 1000)
    member = tmp_path / "data_batch_1"
    member.write_bytes(b"\0" * 1001)
    archive = tmp_path / "cifar.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(member, f"{cifar10.FOLDER_NAME}/data_batch_1")
    with pytest.raises(UserInputError, match="data_batch_1: 1001 bytes, larger than a CIFAR-10 batch can be"):
        load_cifar10(archive)


def test_a_cifar_archive_of_many_members_is_refused(tmp_path):
    archive = tmp_path / "cifar.tar"
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with tarfile.open(archive, "w") as tar:
        for number in range(cifar10.ARCHIVE_MEMBER_LIMIT + 1):
            tar.add(empty, f"filler_{number}")
    with pytest.raises(UserInputError, match="more than 64 members"):
        load_cifar10(archive)


@pytest.mark.parametrize("reader", ["greedyhash_common.state_dicts.paddle_files:read_paddle_file",
                                    "greedyhash_common.infra.safe_pickle:load_npy_dict"],
                         ids=["paddle file", "reprod_log .npy"])
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_checkpoint_or_values_file_that_is_a_special_file_is_refused(tmp_path, reader, kind):
    path = tmp_path / "file"
    os.mkfifo(path) if kind == "fifo" else path.symlink_to("/dev/zero")
    assert "a device, FIFO or socket, not a regular file" in read_in_a_limited_process(reader, path)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_stamp_that_is_a_special_file_is_no_stamp_and_is_not_read(tmp_path, kind):
    """A weight set's stamp linked to /dev/zero (or a FIFO) in inputs/: before, reading it filled the memory (a
    FIFO: waited for ever). It describes nothing: the outputs are made again, and the stamp replaced."""
    stamp, output = tmp_path / "weights_bit48_seeded.pdparams.stamp.json", tmp_path / "weights_bit48_seeded.pdparams"
    output.write_bytes(b"weights")
    os.mkfifo(stamp) if kind == "fifo" else stamp.symlink_to("/dev/zero")
    probe = ("import resource, sys\nresource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
             "from greedyhash_common.infra.content_cache import is_fresh, stamped_key\n"
             "print(is_fresh(sys.argv[1], 'key', [sys.argv[2]]), stamped_key(sys.argv[1], [sys.argv[2]]))\n")
    done = subprocess.run([sys.executable, "-c", probe, str(stamp), str(output)], cwd=PROJECT_ROOT,
                          env=child_environment(), capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout) == (0, "False None\n"), done.stderr[-2000:]


@pytest.mark.slow
def test_a_split_file_that_is_a_fifo_is_refused_not_replaced(tmp_path):
    """Before: the FIFO was replaced by a new split of the default data, and the run trained on it. About
    15 s: torch's import."""
    split_file = tmp_path / "split.npz"
    os.mkfifo(split_file)
    completed = run_module("torch_impl.train", *tiny_options(split_file, tmp_path / "run", epochs=1), timeout=120)
    assert_refused(completed, f"{split_file}: a device, FIFO or socket, not a regular file")
    assert split_file.is_fifo() and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_torch_checkpoint_that_is_a_fifo_is_refused(tmp_path):
    """Before: the converter waited on the FIFO for ever. About 15 s: torch's import."""
    path = tmp_path / "weights.pth"
    os.mkfifo(path)
    completed = run_module("weights_convert", "torch2paddle", path, tmp_path / "out.pdparams", timeout=120)
    assert_refused(completed, "a device, FIFO or socket, not a regular file")


# SIGTERM and a full disk while writing

WRITE_AND_WAIT = ("import sys, time\nfrom greedyhash_common.infra.atomic import atomic_path\n"
                  "from greedyhash_common.infra.errors import exits_cleanly_on_bad_input\n"
                  "@exits_cleanly_on_bad_input\ndef main():\n    with atomic_path(sys.argv[1]) as tmp:\n"
                  "        open(tmp, 'wb').write(b'half')\n        print('writing', flush=True)\n"
                  "        time.sleep(60)\n"
                  "main()\n")


def test_sigterm_while_writing_ends_with_a_line_and_leaves_no_temporary_file(tmp_path):
    writer = subprocess.Popen([sys.executable, "-c", WRITE_AND_WAIT, str(tmp_path / "out.pth")], cwd=PROJECT_ROOT,
                              env=child_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    assert [name for name in os.listdir(tmp_path) if name.startswith(TEMPORARY_PREFIX)]
    writer.send_signal(signal.SIGTERM)
    _, stderr = writer.communicate(timeout=30)
    assert writer.returncode == 128 + signal.SIGTERM and stderr.strip() == "terminated (SIGTERM)"
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_sigterm_during_the_first_checkpoint_write_leaves_nothing_a_resume_trips_on(tmp_path):
    """Before: exit 143 without a word, config.yaml and a .tmp-*.pth left that --resume did not remove.
    About 45 s on a loaded machine: a tiny run up to its first checkpoint, and a refused --resume."""
    split_file = write_tiny_split(tmp_path / "split.npz")
    output_dir = tmp_path / "run"
    options = map(str, tiny_options(split_file, output_dir, epochs=1))
    training = subprocess.Popen([sys.executable, "-m", "torch_impl.train", *options],
                                cwd=PROJECT_ROOT, env=child_environment(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def writing():
        return output_dir.is_dir() and any(name.startswith(TEMPORARY_PREFIX) and name.endswith(".pth")
                                           for name in os.listdir(output_dir))
    try:
        wait_for(lambda: writing() or training.poll() is not None, 240, "the first checkpoint write")
        assert training.poll() is None, training.stderr.read()
        training.send_signal(signal.SIGTERM)
        _, stderr = training.communicate(timeout=60)
    finally:
        training.kill()
    assert training.returncode == 128 + signal.SIGTERM and stderr.strip().splitlines()[-1] == "terminated (SIGTERM)"
    assert not output_dir.exists() or os.listdir(output_dir) == []  # no checkpoint written: nothing of the run
    output_dir.mkdir(exist_ok=True)
    (output_dir / f"{TEMPORARY_PREFIX}abc.pth").write_bytes(b"left by a SIGKILL")
    completed = run_module("torch_impl.train", "--resume", output_dir)
    assert_refused(completed, "no such checkpoint")
    assert os.listdir(output_dir) == []


def _full_disk_on_write(monkeypatch, folder, error):
    """Writes under `folder` fail with `error`, and the disk shows no free space."""
    real_usage = shutil.disk_usage
    monkeypatch.setattr(atomic.shutil, "disk_usage",
                        lambda path: real_usage(path)._replace(free=0) if str(path).startswith(str(folder))
                        else real_usage(path))

    def failing_write(tmp):
        with open(tmp, "wb") as handle:
            handle.write(b"x" * 3000)
        raise error
    return failing_write


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos 64")],
                         ids=["ENOSPC", "torch.save's message"])
def test_a_full_disk_is_one_line_naming_the_folder_and_leaves_no_partial_file(tmp_path, monkeypatch, error):
    write = _full_disk_on_write(monkeypatch, tmp_path, error)
    with pytest.raises(DiskFull) as refused:
        with atomic_path(tmp_path / "weights.pth") as tmp:
            write(tmp)
    message = str(refused.value)
    assert message.startswith(f"no space left in {tmp_path} writing weights.pth") and "\n" not in message
    assert "0.0 MiB free" in message and os.listdir(tmp_path) == []


def test_a_folder_where_a_file_is_written_is_one_line_naming_it_and_leaves_no_partial_file(tmp_path):
    """A folder in inputs/ named as a weight set's file or stamp: before, IsADirectoryError's traceback."""
    target = tmp_path / "weights_bit48_seeded.pdparams"
    target.mkdir()
    with pytest.raises(UserInputError) as refused:
        write_text(target, "{}")
    assert str(refused.value) == f"{target}: a folder where this file is written; remove it and run again"
    assert os.listdir(tmp_path) == [target.name] and os.listdir(target) == []


@pytest.mark.parametrize("call", ["mkstemp", "replace"])
def test_a_folder_that_may_not_be_written_is_one_line_naming_the_file(tmp_path, monkeypatch, call):
    """inputs/ read-only (or immutable: chattr +i, which stops root too) when a weight set is converted: before,
    PermissionError's traceback. The kernel's refusal is planted, as tests may run as root."""
    def refused(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted", str(tmp_path))
    monkeypatch.setattr(*((atomic.tempfile, "mkstemp") if call == "mkstemp" else (atomic.os, "replace")), refused)
    target = tmp_path / "weights_bit48_seeded.pdparams"
    with pytest.raises(UserInputError) as refusal:
        write_text(target, "{}")
    assert str(refusal.value) == (f"{target}: cannot be written (Operation not permitted); make its folder writable"
                                  " and run again")
    assert os.listdir(tmp_path) == []


def test_another_error_while_writing_is_not_called_a_full_disk(tmp_path):
    with pytest.raises(ValueError):
        with atomic_path(tmp_path / "out.json") as tmp:
            write_text(tmp, "{}")
            raise ValueError("not about space")
    assert os.listdir(tmp_path) == []


def plant_interrupted_writes(workdir, outside):
    """Temporaries as killed runs leave them where a run writes, and others a run must not touch: one at the
    workdir's top (not a folder runs write), one in a folder outside reached through a link in the workdir.
    Returns (those to be removed, those to be kept)."""
    case = os.path.join(workdir, "float64", "seeded-64px")
    os.makedirs(case)
    os.makedirs(os.path.join(workdir, "inputs"), exist_ok=True)
    os.makedirs(outside)
    os.symlink(outside, os.path.join(workdir, "float64", "linked-64px"))
    removed = [os.path.join(workdir, "inputs", f"{TEMPORARY_PREFIX}conversion.pdparams"),
               os.path.join(case, f"{TEMPORARY_PREFIX}record.npz")]
    kept = [os.path.join(workdir, f"{TEMPORARY_PREFIX}notes.txt"), os.path.join(outside, f"{TEMPORARY_PREFIX}x.npz")]
    for path in removed + kept:
        with open(path, "wb") as handle:
            handle.write(b"half")
    return removed, kept


def test_what_killed_runs_left_where_runs_write_is_removed_and_nothing_through_a_link(tmp_path):
    removed, kept = plant_interrupted_writes(str(tmp_path / "work"), str(tmp_path / "outside"))
    suite.remove_interrupted_writes(str(tmp_path / "work"))
    assert [os.path.exists(path) for path in removed + kept] == [False] * len(removed) + [True] * len(kept)


@pytest.mark.slow
def test_a_run_removes_what_killed_runs_left_in_its_workdir_before_its_own_work(prepared, tmp_path):
    """A killed conversion's .pdparams (437 MB for GreedyHash in float64) and layer record stayed for ever:
    nothing trusts them, nothing removed them. About 15 s: the smallest run, its weight sets reused."""
    removed, kept = plant_interrupted_writes(prepared, str(tmp_path / "outside"))
    completed = run_module("alignment", *SMALL_RUN, "--bit", BIT, "--workdir", prepared)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert [os.path.exists(path) for path in removed + kept] == [False] * len(removed) + [True] * len(kept)


@pytest.mark.slow
def test_a_weight_set_lost_to_a_full_disk_is_made_again_by_the_next_run(prepared, monkeypatch):
    """The stamp is written last: a set whose .pdparams the disk had no room for is not reused. About 25 s
    on a loaded machine: the seeded set made twice."""
    folder = os.path.join(prepared, "inputs")
    write = _full_disk_on_write(monkeypatch, folder, OSError(errno.ENOSPC, "No space left on device"))
    real_dump = pickle.dump

    def dump(content, handle, **options):
        if os.path.basename(handle.name).endswith(".pdparams"):
            write(handle.name)
        real_dump(content, handle, **options)
    monkeypatch.setattr(pickle, "dump", dump)
    flip_a_byte_keeping_times(weights_path(prepared, BIT, "seeded", ".pth"))  # the set must be made now
    with pytest.raises(DiskFull, match=f"no space left in {folder} writing weights_bit{BIT}_seeded.pdparams"):
        preparing.prepare_weights(BIT, 0, prepared, ["seeded"], pair=GREEDYHASH)
    monkeypatch.undo()
    assert not any(name.startswith(TEMPORARY_PREFIX) for name in os.listdir(folder))
    assert preparing.prepare_weights(BIT, 0, prepared, ["seeded"], pair=GREEDYHASH) == ["seeded"]
    assert preparing.prepare_weights(BIT, 0, prepared, ["seeded"], pair=GREEDYHASH) == []
