"""The mutation gates of the pairs other than GreedyHash: each committed seeded sample rerun with the settings it
records. A module of their own so that CI's two test processes can run them beside GreedyHash's gate
(tests/test_mutants.py) rather than after it: about 3 minutes (ResNet-18) and 2 (MobileNetV2) in CI."""
import json
import os

import pytest

from alignment.mutation import score
from alignment.mutation.run import options_of

from .conftest import PROJECT_ROOT
from .test_mutants import COMMITTED_SAMPLES, run_mutants


@pytest.mark.slow
@pytest.mark.parametrize("pair", COMMITTED_SAMPLES)
def test_a_committed_sample_of_another_pair_scores_at_least_its_committed_score(tmp_path, pair):
    """What CI gates on for ResNet-18 and MobileNetV2: the committed run's own settings, rerun
    (logs/reference/mutants-<pair>/mutation.md states its time)."""
    with open(os.path.join(PROJECT_ROOT, score.reference_summary(pair)), encoding="utf-8") as handle:
        reference = json.load(handle)
    done = run_mutants(tmp_path, *options_of(reference["settings"]))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(tmp_path / "mutation.json", encoding="utf-8") as handle:
        summary = json.load(handle)
    assert summary["settings"] == reference["settings"] and not summary["control_failed"]
    assert summary["score"] >= reference["score"] and summary["killed_by_a_failing_side"] == 0
