"""The Makefile as users meet it (checked as `make -n` prints it): every target listed by `make help`, options
read from the command line only, every output under LOGS, and `make clean` removing what the targets write
and nothing committed."""
import os
import re
import subprocess

import pytest

from .conftest import PROJECT_ROOT, left_by_make_clean, make_dry_run

SHELL_VALUE = "from-the-shell"
# The targets that write, with the options they need to print their command
WRITING_TARGETS = {"align": [], "align-forward": [], "align-layers": [], "align-curve": [], "align-reference": [],
                   "align-mutants": [], "align-mutants-reference": [],
                   "train": [], "eval": [], "predict": [], "export": [], "infer": [],
                   "reproduce": ["DATA=cifar.tar.gz", "PRETRAINED=backbone.pth"], "lite": [], "bench": [],
                   "profile": [], "align-gpu": [], "gpu-check": []}


def phony_targets():
    with open(os.path.join(PROJECT_ROOT, "Makefile"), encoding="utf-8") as handle:
        text = handle.read().replace("\\\n", " ")
    return {target for line in re.findall(r"^\.PHONY:(.*)$", text, re.M) for target in line.split()}


def test_make_help_lists_every_target():
    shown = subprocess.run(["make", "--no-print-directory", "help"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                           check=True).stdout
    words = set(re.findall(r"[a-z][a-z0-9-]*", shown))
    assert len(phony_targets()) > 25
    assert sorted(phony_targets() - words) == []


@pytest.mark.parametrize("model", ["greedyhash", "resnet18"])
def test_every_step_of_a_pair_is_a_make_target_without_a_line_of_its_own(model):
    from alignment.pairs import pair_named
    from alignment.steps import steps_of

    for step in steps_of(pair_named(model)):
        command = make_dry_run(f"align-{step}", f"MODEL={model}").strip().splitlines()[-1]
        assert f"--model {model} " in command and command.endswith(f"--steps {step} --no-profile"), command


@pytest.mark.parametrize("variable, target", [
    ("OUT", "train"), ("OUT", "export"), ("DATA", "align"), ("DATA", "train"), ("ARGS", "lite"), ("SIZE", "align"),
    ("SIZE", "eval"), ("BIT", "eval"), ("WEIGHTS", "align"), ("IMAGE", "predict"), ("LOGS", "bench"),
    ("DTYPE", "align"), ("CHECKPOINT", "eval"), ("MODEL_DIR", "infer"), ("STEPS", "align-gpu"),
    ("FRAMEWORK", "train"), ("EPOCHS", "train"), ("PRETRAINED", "train"), ("CASES", "align-layers"),
    ("BENCH_ARGS", "bench"), ("SEEDS", "align-curve"), ("VENV", "align"), ("MAX", "align-mutants"),
    ("OPERATORS", "align-mutants"), ("SIZE", "align-mutants"),
])
def test_an_option_takes_effect_from_the_command_line_and_never_from_the_shell(variable, target):
    from_shell = make_dry_run(target, environment={**os.environ, variable: SHELL_VALUE})
    assert SHELL_VALUE not in from_shell
    assert from_shell == make_dry_run(target)
    assert SHELL_VALUE in make_dry_run(target, f"{variable}={SHELL_VALUE}")


@pytest.mark.parametrize("target", sorted(WRITING_TARGETS))
def test_every_output_goes_under_logs_and_make_clean_removes_it(target, tmp_path):
    logs = tmp_path / "elsewhere"
    commands = make_dry_run(target, f"LOGS={logs}", *WRITING_TARGETS[target])
    assert str(logs) in commands
    assert not re.search(r"(^|[\s=])logs/(?!reference\b)", commands), commands  # nothing in the default folder
    # the first name below LOGS of every path in the commands (the suite's own files: test_alignment_suite.py)
    logs.mkdir()
    for name in re.findall(rf"{logs}/([^\s/\"']+)", commands):
        (logs / name).mkdir(exist_ok=True)
    assert left_by_make_clean(str(logs)) == []


def test_make_clean_leaves_every_committed_file():
    tracked = subprocess.run(["git", "ls-files", "logs"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    kept = set(left_by_make_clean(os.path.join(PROJECT_ROOT, "logs")))
    assert tracked and {path.split("/")[1] for path in tracked} <= kept | {".gitkeep"}
