"""Progress within an epoch and an evaluation: drawn on a terminal, silent in logs and pipes."""
import io

from greedyhash_common.app import training


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_bar_is_drawn_on_a_terminal_and_cleared_at_the_end():
    terminal = Terminal()
    bar = training.ProgressBar(4, "epoch 1/2", stream=terminal)
    bar.update(4, "loss 0.5")
    bar.close()
    assert "epoch 1/2 [" + "#" * training.ProgressBar.WIDTH + "] 4/4 loss 0.5" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r\033[K")


def test_the_bar_is_silent_where_the_output_is_not_a_terminal():
    log = io.StringIO()
    bar = training.ProgressBar(4, "epoch 1/2", stream=log)
    bar.update(4)
    bar.close()
    assert log.getvalue() == ""


def test_evaluation_batches_pass_through_unchanged_while_their_count_is_drawn(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(training.sys, "stderr", terminal)
    batches = [("images", 0), ("images", 1), ("images", 2)]
    assert list(training.with_progress(batches, "encoding the database")) == batches
    assert "encoding the database [" in terminal.getvalue() and "3/3" in terminal.getvalue()
