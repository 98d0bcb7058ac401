"""A small seeded fuzz of every file reader (tests/fuzz_readers.py): each damaged or crafted file must end in
UserInputError or be read as valid, never another exception, a crash or a hang. Each family runs in its
own process, so a segfault fails the test and names the case."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

SEED = 12
# Damaged copies per file: the framework-free readers are fast, the framework ones pay for their import, an
# export for a predictor of AlexNet's size per case.
CASES_PER_FILE = {"plain": 300, "paddle": 100, "export": 8, "torch": 100}
TIME_LIMIT_SECONDS = 120  # a hang fails here (each family takes a fraction of it: python -m tests.fuzz_readers)


@pytest.mark.parametrize("family", [pytest.param(family, marks=pytest.mark.slow) if family == "export" else family
                                    for family in sorted(CASES_PER_FILE)])
def test_every_damaged_or_crafted_file_is_refused_cleanly(family):
    command = [sys.executable, "-m", "tests.fuzz_readers", family, str(SEED), str(CASES_PER_FILE[family])]
    try:
        done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=TIME_LIMIT_SECONDS,
                              env={**os.environ, "PYTHONPATH": PROJECT_ROOT})
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"{family}: no answer within {TIME_LIMIT_SECONDS} s; last case: "
                    f"{(expired.stderr or b'').decode().strip().splitlines()[-1:]}")
    last_case = done.stderr.strip().splitlines()[-1:]
    assert done.returncode == 0, f"{family}: exit status {done.returncode} during {last_case}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["unexpected"] == []
    assert result["cases"] >= 2 * CASES_PER_FILE[family]  # every family has at least two kinds of file
