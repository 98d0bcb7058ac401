"""The quick end-to-end chain (make lite) and the reproduction chain (make reproduce) on tiny built-in data."""
import pytest

from tools import lite_chain, reproduce
from tests.tiny_runs import write_tiny_split


@pytest.mark.slow
def test_the_lite_chain_trains_evaluates_exports_and_infers(tmp_path):
    shown = []
    timings = lite_chain.run_chain(str(tmp_path / "lite"), threads=2, step_done=lambda *done: shown.append(done))
    assert [step for step, _ in timings] == ["split", "train", "eval", "export", "infer", "predict"]
    assert shown == timings  # each step is reported as it ends, not at the end of the chain


@pytest.mark.slow
def test_the_reproduce_chain_writes_the_table(tmp_path):
    """The whole make reproduce chain, with 1 epoch of tiny data (nobody can run the real one here)."""
    split_file = write_tiny_split(tmp_path / "split.npz")
    report = tmp_path / "reproduce.md"
    reproduce.main(["--bits", "12,48", "--epochs", "1", "--image-size", "64", "--runs-dir", str(tmp_path / "runs"),
                    "--report", str(report), "--quiet", "--", "--split-file", split_file, "--protocol", "cifar10-2",
                    "--threads", "2"])
    text = report.read_text()
    assert "**Not comparable with the paper: the data is the built-in synthetic set" in text
    rows = [line for line in text.splitlines() if line.startswith("| 12 ") or line.startswith("| 48 ")]
    assert len(rows) == 2
    assert "| 0.774 | 0.798 |" in rows[0] and "| 0.822 | 0.819 |" in rows[1]


def test_reproduce_refuses_unknown_bit_lengths(capsys):
    with pytest.raises(SystemExit):
        reproduce.main(["--bits", "12,16"])
    assert "bit lengths must be among 12, 24, 32, 48" in capsys.readouterr().err
