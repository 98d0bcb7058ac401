"""The Makefile as users meet it: every target listed by `make help`, options read from the command line
only and passed on as typed, one argument each, whatever shell or make syntax they hold (run against a
stand-in interpreter that records its arguments), every output under LOGS, and `make clean` removing what the
targets write and nothing else: nothing committed, nothing beside or outside LOGS, no user file inside it."""
import json
import os
import re
import subprocess

import pytest

from .conftest import PROJECT_ROOT, left_by_make_clean, make_dry_run, run_make

SHELL_VALUE = "from-the-shell"
# Options whose value must be one of a few: the value the shell test gives them
SHELL_VALUE_OF = {"FRAMEWORK": "torch"}
# The targets that write, with the options they need to print their command
WRITING_TARGETS = {"align": [], "align-forward": [], "align-layers": [], "align-curve": [], "align-reference": [],
                   "align-mutants": [], "align-mutants-reference": [],
                   "train": [], "eval": [], "predict": [], "export": [], "infer": [],
                   "reproduce": ["DATA=cifar.tar.gz", "PRETRAINED=backbone.pth"], "lite": [], "bench": [], "bench-suite": [],
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
    ("OPERATORS", "align-mutants"), ("SIZE", "align-mutants"), ("WEIGHT_SETS", "align"),
    ("WEIGHT_SETS", "align-mutants"),
])
def test_an_option_takes_effect_from_the_command_line_and_never_from_the_shell(variable, target):
    value = SHELL_VALUE_OF.get(variable, SHELL_VALUE)
    from_shell = make_dry_run(target, environment={**os.environ, variable: value})
    assert value not in from_shell
    assert from_shell == make_dry_run(target)
    assert value in make_dry_run(target, f"{variable}={value}")


@pytest.mark.parametrize("target", sorted(WRITING_TARGETS))
def test_every_output_goes_under_logs_and_make_clean_removes_it(target, tmp_path):
    logs = tmp_path / "else where"
    commands = make_dry_run(target, f"LOGS={logs}", *WRITING_TARGETS[target])
    assert str(logs) in commands
    assert not re.search(r"(^|[\s=])'?logs/(?!reference\b)", commands), commands  # nothing in the default folder
    # every path below LOGS in the commands, made as a folder with a file in it (the suite's own files:
    # test_alignment_suite.py); a name the shell completes (profile_$framework_$mkl.txt) is made complete
    logs.mkdir()
    for path in re.findall(rf"{logs}/([^\s\"']+)", commands):
        made = logs / (path + "torch_vendor.txt" if path.endswith("_") else path)
        made.mkdir(parents=True, exist_ok=True)
        (made / "written").write_text("")
    assert left_by_make_clean(str(logs)) == []


def test_make_clean_leaves_every_committed_file():
    tracked = subprocess.run(["git", "ls-files", "logs"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    kept = set(left_by_make_clean(os.path.join(PROJECT_ROOT, "logs")))
    assert tracked and {path.split("/")[1] for path in tracked} <= kept | {".gitkeep"}


# ------------------------------------------------------------------------------------------------------------
# Options with shell or make syntax are data: a stand-in interpreter (VENV=) records the arguments it gets.

RECORDER = """#!/bin/sh
# records its arguments, one JSON list per line, and exits with $RECORDED_STATUS
python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@" >> "$RECORDED_ARGUMENTS"
exit "${RECORDED_STATUS:-0}"
"""


@pytest.fixture
def recorder(tmp_path):
    """run(target, *assignments, status=0) -> (CompletedProcess, [argument lists]) of `make` with .venv and
    .venv-gpu replaced by the recorder; `pwned` is the file an injected command would make."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(RECORDER)
    (venv / "bin" / "python").chmod(0o755)
    (venv / ".installed-requirements").write_text("")
    log = tmp_path / "arguments.jsonl"

    def run(target, *assignments, status=0):
        log.write_text("")
        done = run_make(PROJECT_ROOT, target, f"VENV={venv}", f"GPU_VENV={venv}", *assignments,
                        environment={**os.environ, "RECORDED_ARGUMENTS": str(log), "RECORDED_STATUS": str(status)})
        return done, [json.loads(line) for line in log.read_text().splitlines()]

    return run


def hostile_values(pwned):
    """Values a careless or hostile user gives: shell syntax, make syntax, quotes, spaces, comments."""
    return {"semicolon": f"x;touch {pwned} #", "make function": f"$(shell touch {pwned})",
            "make-escaped substitution": f"$$(touch {pwned})", "substitution": f"$(touch {pwned})",
            "backticks": f"`touch {pwned}`", "quotes": f"it's \"{pwned}\"; touch {pwned}",
            "spaces": f"my folder/with spaces {pwned}", "comment": f"#x {pwned}", "pipe and redirection": f"|>{pwned}"}


# Each option the Makefile accepts, the target that passes it on, the option of the program it becomes
# (None: part of a path the target builds), and the other assignments the target needs
OPTIONS = [("MODEL", "align", "--model", []), ("WEIGHTS", "align", "--weights", []), ("DATA", "align", "--data", []),
           ("LOGS", "align", "--workdir", []), ("BIT", "align", "--bit", []), ("SIZE", "align", "--sizes", []),
           ("DTYPE", "align", "--dtypes", []), ("STEPS", "align-gpu", "--steps", []),
           ("CASES", "align-layers", "--cases", []), ("MAX", "align-mutants", "--max", []),
           ("OPERATORS", "align-mutants", "--operators", []), ("JOBS", "align-mutants", "--jobs", []),
           ("WEIGHT_SETS", "align-mutants", "--weight-sets", []),
           ("TORCH", "align-mutants", "--torch", ["PADDLE=m:f"]),
           ("PADDLE", "align-mutants", "--paddle", ["TORCH=m:f"]),
           ("SEEDS", "align-curve", "--seeds", []),
           ("EPOCHS_CURVE", "align-curve", "--epochs", []), ("GPU_LOGS", "gpu-check", None, []),
           ("OUT", "train", "--output-dir", []), ("PRETRAINED", "train", "--pretrained", []),
           ("EPOCHS", "train", "--epochs", []), ("CHECKPOINT", "eval", "--checkpoint", []),
           ("IMAGE", "predict", "--image", []), ("INDEX", "predict", "--index", []),
           ("MODEL_DIR", "infer", "--model-dir", []), ("SRC", "convert", None, ["DST=out.pdparams"]),
           ("DST", "convert", None, ["SRC=in.pth"]), ("DIRECTION", "convert", None, ["SRC=a", "DST=b"]),
           ("PRETRAINED", "reproduce", "--pretrained", ["DATA=cifar"]),
           ("DATA", "reproduce", "--data", ["PRETRAINED=p"]), ("REFERENCE", "align-reference", None, []),
           ("DEVICE", "gpu-report", "--device", []), ("TEST_WORKERS", "test-fast", "-n", [])]


def test_every_option_of_the_makefile_is_checked_for_injection():
    with open(os.path.join(PROJECT_ROOT, "Makefile"), encoding="utf-8") as handle:
        assigned = set(re.findall(r"^([A-Z][A-Z_]*) :=", handle.read(), re.M))
    internal = {"PYTHON", "INSTALLED", "GPU_PYTHON", "GPU_INSTALLED", "REQUIREMENTS", "SHELL_SPECIAL"}
    checked = {option for option, *_ in OPTIONS} | {"ARGS", "BENCH_ARGS", "VENV", "GPU_VENV", "FRAMEWORK"}
    assert sorted(assigned - internal - checked) == []


@pytest.mark.parametrize("option, target, flag, needed", OPTIONS, ids=[f"{o[0]}-{o[1]}" for o in OPTIONS])
def test_an_option_with_shell_or_make_syntax_reaches_the_program_as_one_argument(option, target, flag, needed,
                                                                                 recorder, tmp_path):
    pwned = tmp_path / "pwned"
    for kind, value in hostile_values(pwned).items():
        done, calls = recorder(target, f"{option}={value}", *needed)
        assert not pwned.exists(), (kind, done.stdout)
        assert done.returncode == 0 and calls, (kind, done.stderr)
        arguments = calls[-1]  # align-reference: the suite (a make of its own), then the report
        if flag:
            assert arguments[arguments.index(flag) + 1] == value, (kind, arguments)
        else:
            assert any(value in argument for argument in arguments), (kind, arguments)


@pytest.mark.parametrize("option, target", [("ARGS", "train"), ("ARGS", "eval"), ("ARGS", "lite"),
                                            ("BENCH_ARGS", "bench")])
def test_args_are_split_at_spaces_by_make_never_parsed_by_the_shell(option, target, recorder, tmp_path):
    pwned = tmp_path / "pwned"
    for kind, value in hostile_values(pwned).items():
        done, calls = recorder(target, f"{option}={value} --epochs 2")
        assert not pwned.exists(), (kind, done.stdout)
        assert done.returncode == 0 and calls[0][-len(value.split()) - 2:] == [*value.split(), "--epochs", "2"], kind


def test_make_fails_when_the_program_fails(recorder):
    for target in ("align", "train", "convert"):
        done, calls = recorder(target, "SRC=a", "DST=b", status=3)
        assert done.returncode == 2 and len(calls) == 1, (target, done.stderr)
    done, _ = recorder("align", "MODEL=x;true", status=3)
    assert done.returncode == 2


@pytest.mark.parametrize("assignment, message", [
    ("MODEL=greedyhash\ntouch {pwned}", "MODEL: a value with a line break cannot be passed on as one argument"),
    ("ARGS=--lr 1\n;touch {pwned}", "ARGS: a value with a line break"),
    ("FRAMEWORK=torch;touch {pwned}", "FRAMEWORK=torch;touch {pwned}: paddle or torch"),
    ("FRAMEWORK=$(shell touch {pwned})", "FRAMEWORK=$(shell touch {pwned}): paddle or torch"),
    ("VENV=my env", "VENV=my env: a folder name without spaces, $, % or :"),
    ("GPU_VENV=$(shell touch {pwned})", "GPU_VENV=$(shell touch {pwned}): a folder name without"),
])
def test_what_cannot_be_passed_on_is_refused_in_one_line(assignment, message, recorder, tmp_path):
    pwned = tmp_path / "pwned"
    done, calls = recorder("train", assignment.format(pwned=pwned))
    assert done.returncode == 2 and calls == [] and not pwned.exists()
    assert message.format(pwned=pwned) in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


# ------------------------------------------------------------------------------------------------------------
# make clean: only the names the targets write, only in LOGS, which must be one existing folder.

def tree(folder):
    return sorted(os.path.relpath(os.path.join(root, name), folder)
                  for root, folders, files in os.walk(folder) for name in folders + files)


def written_and_decoys(logs):
    """LOGS with what the targets write and a user's files among them; return the user's files."""
    for written in ("float32/a.npy", "inputs/weights.pth", "report.md", "side_torch.log", ".tmp-abc.pth",
                    "train/paddle-bit48/best.pdparams", "train/torch-bit12/last.pth", "train/.tmp-x",
                    "export/paddle-bit48/model.json", "lite/run/x", "predict-paddle.png", "profile_torch_avx2.txt",
                    "suite_cost.md", "suite_cost-after-default.log"):
        (logs / written).parent.mkdir(parents=True, exist_ok=True)
        (logs / written).write_text("")
    user = ["train/notes.txt", "train/my-bit48/a", "export/paddle-bit48.md", "mine/.tmp-keep", "mine/float32/x",
            "notes.txt", "reference/report.md"]
    for path in user:
        (logs / path).parent.mkdir(parents=True, exist_ok=True)
        (logs / path).write_text("mine")
    return user


def test_make_clean_removes_the_targets_outputs_and_keeps_a_users_files_inside_and_beside(tmp_path):
    home = tmp_path / "home"
    logs = home / "My Project" / "logs"
    logs.mkdir(parents=True)
    user = written_and_decoys(logs)
    (home / "My").mkdir()
    (home / "My" / "thesis.tex").write_text("mine")
    (home / "My Project" / "report.md").write_text("mine")
    done = run_make(tmp_path, "clean", f"LOGS={logs}")
    assert done.returncode == 0, done.stderr
    assert sorted(set(tree(logs)) - {"train", "train/my-bit48", "export", "mine", "mine/float32", "reference"}) == \
        sorted(user)
    assert "kept" in done.stdout and f"{logs}/train" in done.stdout
    assert (home / "My" / "thesis.tex").exists() and (home / "My Project" / "report.md").exists()


@pytest.mark.parametrize("logs", ["", " ", "~/My Project/logs", "{tmp}/a {tmp}/b", "{tmp}/a/report.md",
                                  "{tmp}/missing", "$(shell rm -rf {tmp}/a)", "{tmp}/a;rm -rf {tmp}/b"])
def test_make_clean_refuses_a_logs_that_is_not_one_existing_folder(logs, tmp_path):
    home = tmp_path / "home"
    for folder in (tmp_path / "a", tmp_path / "b", home / "My Project" / "logs", home / "My"):
        folder.mkdir(parents=True)
        written_and_decoys(folder)
    before = tree(tmp_path)
    done = run_make(tmp_path, "clean", f"LOGS={logs.format(tmp=tmp_path)}",
                    environment={**os.environ, "HOME": str(home)})
    assert done.returncode == 2 and "is not an existing folder; nothing removed" in done.stderr, done.stderr
    assert tree(tmp_path) == before
