"""Data-parallel training with two processes on the CPU (gloo): torchrun and paddle.distributed.launch.

Both frameworks' launchers run here; a GPU cluster (NCCL) cannot be tested on this machine. The batch
order over processes is the single-process one (tests/test_batch_order.py); the processes draw their
own dropout masks, so the weights are not bit-identical to a single-process run."""
import json
import math
import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT
from tests.tiny_runs import FRAMEWORKS, LAST, read_training_checkpoint, tiny_options, write_tiny_split

LAUNCHERS = {
    "torch": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "torch_impl.train"],
    # launch starts a module only through an interpreter path (its training script is run as a program).
    "paddle": [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", "{logs}",
               sys.executable, "-m", "paddle_impl.train"],
}


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_two_processes_train_and_checkpoint_both_random_streams(framework, tmp_path):
    split_file = write_tiny_split(tmp_path / "split.npz")
    run_dir = tmp_path / "run"
    options = tiny_options(split_file, run_dir, epochs=1)
    options[options.index("--threads") + 1] = 1  # two processes on two cores
    command = [part.format(logs=tmp_path / "logs") for part in LAUNCHERS[framework]] + [str(option) for option in options]
    completed = subprocess.run(command, cwd=PROJECT_ROOT, env=dict(os.environ, PYTHONPATH=PROJECT_ROOT),
                               capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    checkpoint = read_training_checkpoint(framework, run_dir / LAST[framework])
    assert checkpoint["epoch"] == 0 and len(checkpoint["rng"]) == 2
    assert checkpoint["rng"][0]["python"] == checkpoint["rng"][1]["python"]
    history = json.loads((run_dir / "history.json").read_text())
    assert history[0]["images"] == 50 and math.isfinite(history[0]["loss"]) and 0 <= history[0]["map"] <= 1
