"""Where the project is, and how it starts a Python process of its own: every tool that runs a module of
this project in another interpreter (the alignment suite's sides, the benchmark, the GPU check, the
reproduce and lite chains) builds the command and the environment here."""
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def module_command(python, module, *arguments):
    """`python -m module arguments`, every argument as a string."""
    return [python, "-m", module, *map(str, arguments)]


def child_environment(**overrides):
    """This environment (with `overrides`), the project importable from any interpreter: each framework
    may run in an environment of its own."""
    env = dict(os.environ, **overrides)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env
