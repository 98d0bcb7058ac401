"""Running entry points as a user runs them (python -m ..., from the project root), timed."""
import sys
import time

from greedyhash_common.infra.child_processes import run_child
from greedyhash_common.project import PROJECT_ROOT, child_environment, module_command


class StepFailed(Exception):
    """A step exited non-zero or its output failed a check."""


def run_step(name, module, arguments, capture=True):
    """Run `python -m module arguments`; return (seconds, stdout). Raise StepFailed on a non-zero exit."""
    command = module_command(sys.executable, module, *arguments)
    started = time.perf_counter()
    completed = run_child(command, "python", capture, cwd=PROJECT_ROOT, env=child_environment())
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        output = (completed.stderr or "").strip().splitlines()[-15:] if capture else []
        raise StepFailed(f"{name}: exit status {completed.returncode} from {' '.join(command)}"
                         + ("\n  " + "\n  ".join(output) if output else ""))
    return seconds, completed.stdout or ""


def check(condition, message):
    if not condition:
        raise StepFailed(message)
