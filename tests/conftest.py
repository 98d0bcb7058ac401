"""Shared fixtures: one seeded GreedyHash checkpoint in both formats, small inputs."""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from alignment.sides.allocator import free_step_garbage
from greedyhash_common.infra.runtime_settings import quiet_paddle_import

quiet_paddle_import()
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIT = 48


def make_dry_run(*arguments, environment=None):
    """The commands `make` would run, without running them (in `environment`, default this process's)."""
    done = subprocess.run(["make", "-n", "--no-print-directory", *arguments], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, check=True, env=environment)
    return done.stdout


def run_make(folder, *arguments, environment=None):
    """`make` with the project's Makefile, run in `folder` (its project-relative paths: .cache, logs/...)."""
    return subprocess.run(["make", "--no-print-directory", "-f", os.path.join(PROJECT_ROOT, "Makefile"), "-C",
                           str(folder), *arguments], capture_output=True, text=True, env=environment)


def left_by_make_clean(logs):
    """The entries directly under `logs` that `make clean LOGS=logs` would leave: it runs on a copy of the
    folder's tree with every file empty, in a scratch folder."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = os.path.join(scratch, "logs")
        shutil.copytree(logs, copy, symlinks=True, copy_function=lambda _, target: open(target, "wb").close())
        done = run_make(scratch, "clean", f"LOGS={copy}")
        assert done.returncode == 0, done.stderr
        return sorted(os.listdir(copy))


@pytest.fixture(autouse=True)
def freed_reference_cycles(request):
    """After a slow test, the objects only reference cycles hold (a trained model, its gradients and
    momentum): left to the collector's own schedule they piled up over a module's training tests to 14 GB
    in one test process. The suite's sides do the same after each step (alignment.sides.allocator)."""
    yield
    if request.node.get_closest_marker("slow"):
        free_step_garbage()


@pytest.fixture(scope="session")
def weight_sets(tmp_path_factory):
    """{weight set: (torch .pth, paddle .pdparams)} of the suite's default sets (alignment.weight_sets),
    as a run prepares them: the rescaled set is made on the suite's batch."""
    from alignment.inputs import write_input_batch
    from alignment.pairs.greedyhash import GREEDYHASH as greedyhash
    from alignment.paths import weights_path
    from alignment.prepare_weights import prepare_weights

    workdir = str(tmp_path_factory.mktemp("weights"))
    write_input_batch(workdir, greedyhash, None, 4, (), greedyhash.WEIGHT_SETS)
    prepare_weights(BIT, 0, workdir, greedyhash.WEIGHT_SETS, pair=greedyhash)
    return {name: (weights_path(workdir, BIT, name, ".pth"), weights_path(workdir, BIT, name, ".pdparams"))
            for name in greedyhash.WEIGHT_SETS}


@pytest.fixture(scope="session")
def weights(weight_sets):
    """(torch .pth, paddle .pdparams) of the seeded model, the second converted from the first."""
    return weight_sets["seeded"]


@pytest.fixture(scope="session")
def rescaled_weights(weight_sets):
    """(torch .pth, paddle .pdparams) of the seeded model rescaled to a trained network's value ranges."""
    return weight_sets["rescaled"]


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory):
    """tmp_path_factory.mktemp for a module's fixtures, whose folders go when the module's tests end:
    a checkpoint is 220 MB (float64 values twice that), and a session's worth would fill a CI disk."""
    made = []

    def mktemp(name):
        made.append(tmp_path_factory.mktemp(name))
        return made[-1]

    yield mktemp
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def split_file(module_tmp):
    """A tiny run's split (tests/tiny_runs.py), one per test module."""
    from tests.tiny_runs import write_tiny_split

    return write_tiny_split(module_tmp("split") / "split.npz")


@pytest.fixture(scope="session")
def small_batch():
    """Images (4, 3, 64, 64) float64 and labels: AlexNet's adaptive pool accepts 64x64 inputs."""
    rng = np.random.default_rng(0)
    return rng.standard_normal((4, 3, 64, 64)), np.array([0, 1, 2, 3], dtype=np.int64)


def run_module(module, *arguments, **kwargs):
    """Run `python -m module` from the project root, as a user would; return the CompletedProcess."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=PROJECT_ROOT)
    return subprocess.run([sys.executable, "-m", module, *map(str, arguments)], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, **kwargs)


NULL_FD = "{null_fd}"  # an argument of side_process_imports_paddle: a descriptor open on /dev/null


def side_process_imports_paddle(module, *arguments):
    """Run a side's entry point for torch in a fresh interpreter; True if paddle got imported."""
    import subprocess

    probe = ("import os, runpy, sys\n"
             "null_fd = str(os.open(os.devnull, os.O_WRONLY))\n"
             f"sys.argv = [{module!r}, 'torch', *{[str(argument) for argument in arguments]!r}]\n"
             f"sys.argv = [null_fd if argument == {NULL_FD!r} else argument for argument in sys.argv]\n"
             f"try:\n    runpy.run_module({module!r}, run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print('paddle imported' if 'paddle' in sys.modules else 'paddle not imported')\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=PROJECT_ROOT))
    assert done.stdout.strip().endswith("imported"), done.stdout + done.stderr
    return not done.stdout.strip().endswith("paddle not imported")
