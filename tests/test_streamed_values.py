"""The sides' values streamed to the suite and checked as they come: the message format, a side that ends or
sends the wrong step, and which arrays the suite keeps on disk."""
import argparse
import io
import json
import os
import weakref

import numpy as np
import pytest

from alignment.cases import Case
from alignment.check import StepResult, compare_arrays, compare_invariant
from alignment.pairs.greedyhash import GREEDYHASH
from alignment.paths import side_values_path
from alignment.reprod_format import load_values
from alignment.steps import check_values
from alignment.streamed_values import BrokenStream, read_step, write_step
from alignment.suite import SIDE_PROCESS, check_streams, keep_arrays
from alignment.tolerances import Tolerance

RUN = {"dtype": "float64", "step": "forward", "case": "seeded-64px"}


def stream_of(*messages):
    handle = io.BytesIO()
    for run, values in messages:
        write_step(handle, run, values)
    handle.seek(0)
    return handle


def test_every_numeric_dtype_and_shape_arrives_as_sent():
    values = {"scalar": np.float64(2.5) * np.ones(()), "empty": np.zeros((0, 3), np.int64),
              "strided": np.arange(12.0).reshape(3, 4)[:, ::2], "transposed": np.arange(12.0).reshape(3, 4).T,
              "flags": np.array([True, False]),
              "half": np.float16([1.5]), "labels": np.arange(5, dtype=np.uint8), "grad": np.float32([[1e-30, -3]])}
    stream = stream_of((RUN, values), ({**RUN, "case": "seeded"}, {}))
    run, received = read_step(stream)
    assert run == RUN and list(received) == list(values)
    for key, value in values.items():
        assert received[key].dtype == value.dtype and received[key].shape == value.shape, key
        np.testing.assert_array_equal(received[key], value)
    assert received["transposed"].flags.f_contiguous  # sent as it lay in memory, not copied by the side
    assert read_step(stream) == ({**RUN, "case": "seeded"}, {}) and read_step(stream) is None


def test_a_message_cut_short_names_the_key_it_ended_in():
    whole = stream_of((RUN, {"h": np.ones(4), "logits": np.ones((4, 10))})).getvalue()
    with pytest.raises(BrokenStream, match="logits: the side ended within its values"):
        read_step(io.BytesIO(whole[:-8]))


@pytest.mark.parametrize("header, message", [
    (b'{"arrays": [["x", "|O", [1], "C"]]}\n', "x: not a numeric array"),  # an object array would unpickle
    (b'{"arrays": [["x", "<f8", [-1], "C"]]}\n', "x: not a numeric array"),
    (b'{"arrays": [["x", "<f8", [1], "A"]]}\n', "x: not a numeric array"),
    (b'{"arrays": [["x", "<f8", [1]]]}\n', "not a header"),
    (b'not json\n', "not a header"),
    (b'{"arrays": 3}\n', "not a header"),
    (b'{"dtype": "float64"', "a header without its end"),
])
def test_anything_but_numeric_arrays_is_refused(header, message):
    with pytest.raises(BrokenStream, match=message):
        read_step(io.BytesIO(header + b"\0" * 8))


def test_a_side_cannot_send_an_object_array():
    with pytest.raises(TypeError, match="x: a step's values are numeric arrays"):
        write_step(io.BytesIO(), RUN, {"x": np.array([object()])})


def run_args(workdir, **options):
    return argparse.Namespace(**{"workdir": str(workdir), "steps": "forward", "dtypes": "float64",
                                 "weight_sets": "seeded", "sizes": "64", "bulk_size": 64, "keep_arrays": False,
                                 **options})


FORWARD = {"logits": np.ones((2, 10)), "h": np.full((2, 12), 0.5), "b": np.ones((2, 12)),
           "train_logits": np.ones((2, 10)), "train_h": np.full((2, 12), 0.5), "train_b": np.ones((2, 12))}


def test_a_side_that_ends_fails_every_check_it_did_not_send_naming_its_log(tmp_path):
    streams = {"torch": stream_of((RUN, FORWARD)), "paddle": stream_of()}
    [result] = check_streams(run_args(tmp_path), GREEDYHASH, streams, {"torch": "t.log", "paddle": "p.log"})
    assert not result.passed and [key.name for key in result.keys] == [SIDE_PROCESS]
    assert result.keys[0].note == "paddle side failed, see p.log"
    report = json.loads((tmp_path / "float64" / "seeded-64px" / "forward_diff.json").read_text())
    assert not report["passed"]


def test_a_side_that_sends_another_step_fails_naming_what_was_due(tmp_path):
    streams = {"torch": stream_of((RUN, FORWARD)), "paddle": stream_of(({**RUN, "step": "loss"}, FORWARD))}
    [result] = check_streams(run_args(tmp_path), GREEDYHASH, streams, {"torch": "t.log", "paddle": "p.log"})
    assert not result.passed
    note = result.keys[0].note
    assert "paddle side sent" in note and "where forward seeded-64px float64 was due" in note


def test_two_agreeing_sides_pass_and_a_differing_key_is_found(tmp_path):
    differing = {**FORWARD, "train_h": FORWARD["train_h"] + 1e-3}
    streams = {"torch": stream_of((RUN, FORWARD)), "paddle": stream_of((RUN, differing))}
    [result] = check_streams(run_args(tmp_path), GREEDYHASH, streams, {"torch": "t.log", "paddle": "p.log"})
    assert [key.name for key in result.keys if not key.passed] == ["train_h"]


def result_of(step, keys):
    result = StepResult(step, "float64", keys)
    result.case = Case("seeded", 64)
    return result


def kept(workdir, step):
    paths = {side: side_values_path(str(workdir), "float64", Case("seeded", 64), step, side)
             for side in ("torch", "paddle")}
    return {side: sorted(load_values(path)) if os.path.exists(path) else None
            for side, path in paths.items()}


def test_only_the_failing_keys_and_an_invariants_two_keys_are_kept_and_a_pass_removes_them(tmp_path):
    tight = Tolerance(0.0, 0.0)
    torch_values = {"param.a": np.zeros(3), "param.b": np.ones(3), "lr": np.ones(2), "lr_formula": np.ones(2)}
    paddle_values = {**torch_values, "param.b": np.full(3, 2.0), "lr_formula": np.zeros(2)}
    failing = result_of("optim", [compare_arrays(key, torch_values[key], paddle_values[key], tight)
                                  for key in ("param.a", "param.b")]
                        + [compare_invariant("lr", "lr_formula", paddle_values, "paddle")])
    values = {"torch": torch_values, "paddle": paddle_values}
    keep_arrays(run_args(tmp_path), failing, values)
    assert kept(tmp_path, "optim") == {side: ["lr", "lr_formula", "param.b"] for side in ("torch", "paddle")}
    passing = result_of("optim", [compare_arrays("param.a", torch_values["param.a"], paddle_values["param.a"], tight)])
    keep_arrays(run_args(tmp_path), passing, values)
    assert kept(tmp_path, "optim") == {"torch": None, "paddle": None}  # no earlier run's file left to trust
    keep_arrays(run_args(tmp_path, keep_arrays=True), passing, values)
    assert kept(tmp_path, "optim") == {side: sorted(torch_values) for side in ("torch", "paddle")}


def test_the_reprod_log_steps_keep_every_key_when_they_pass(tmp_path):
    passing = result_of("forward", [compare_arrays("h", FORWARD["h"], FORWARD["h"], Tolerance(0.0, 0.0))])
    keep_arrays(run_args(tmp_path), passing, {"torch": FORWARD, "paddle": FORWARD})
    assert kept(tmp_path, "forward") == {side: sorted(FORWARD) for side in ("torch", "paddle")}


def test_a_side_that_died_is_diagnosed_without_the_arrays_it_never_sent(tmp_path):
    """A side killed in its train step (the kernel's OOM killer, here on a loaded machine): the verdicts are
    written, not an error about the train step's file, which no side wrote."""
    from alignment.verdict import verdicts
    from alignment.known_differences import evidence_of_run

    streams = {"torch": stream_of((RUN, FORWARD)), "paddle": stream_of()}
    results = check_streams(run_args(tmp_path), GREEDYHASH, streams, {"torch": "t.log", "paddle": "p.log"})
    [row] = verdicts(results, {}, evidence_of_run(str(tmp_path), 48, GREEDYHASH.key_map()))
    assert not row.passed and "paddle side failed, see p.log" in row.note


BACKWARD_RUN = {**RUN, "step": "backward"}
# the backward step's values as far as the checker reads them: a gradient, and GreedyHash's invariant's two keys
BACKWARD = {"grad.alex.features.0.weight": np.ones((4, 3)), "grad.hash_layer.weight": np.full((2, 4), 0.5),
            "grad_cross_entropy.h": np.ones(3), "grad_cross_entropy.b": np.ones(3)}


def test_the_port_checked_as_it_arrives_gives_the_verdicts_of_its_whole_values_and_keeps_the_failing_keys(tmp_path):
    differing = {**BACKWARD, "grad.hash_layer.weight": BACKWARD["grad.hash_layer.weight"] + 1e-3,
                 "grad_cross_entropy.b": np.zeros(3)}
    streams = {"torch": stream_of((BACKWARD_RUN, BACKWARD)), "paddle": stream_of((BACKWARD_RUN, differing))}
    args = run_args(tmp_path, steps="backward")
    [streamed] = check_streams(args, GREEDYHASH, streams, {"torch": "t.log", "paddle": "p.log"})
    whole = check_values("backward", "float64", BACKWARD, differing, GREEDYHASH)
    assert [repr(key) for key in streamed.keys] == [repr(key) for key in whole.keys]
    assert sorted(key.name for key in streamed.keys if not key.passed) == [
        "grad.hash_layer.weight", "grad_cross_entropy.b", "grad_cross_entropy.h == grad_cross_entropy.b (paddle)"]
    paths = {side: side_values_path(str(tmp_path), "float64", Case("seeded", 64), "backward", side)
             for side in ("torch", "paddle")}
    wanted = ["grad.hash_layer.weight", "grad_cross_entropy.b", "grad_cross_entropy.h"]
    assert {side: sorted(load_values(path)) for side, path in paths.items()} == {"torch": wanted, "paddle": wanted}
    np.testing.assert_array_equal(load_values(paths["paddle"])["grad.hash_layer.weight"],
                                  differing["grad.hash_layer.weight"])


def test_the_checker_holds_no_port_array_that_passed_once_the_next_arrives():
    """Planted defect: a checker that gathers the port's values before comparing them holds them all."""
    alive = []

    def arriving(values, may_hold=()):
        alive.clear()
        for key, value in values.items():
            assert [name for name, array in alive if array() is not None and name not in may_hold] == [], key
            made = [np.array(value)]
            alive.append((key, weakref.ref(made[0])))
            yield key, made.pop()  # this generator holds none of them

    invariant = ("grad_cross_entropy.h", "grad_cross_entropy.b")  # held: compared with each other at the end
    assert check_values("backward", "float64", BACKWARD, arriving(BACKWARD, invariant), GREEDYHASH).passed
    with pytest.raises(AssertionError, match="grad.hash_layer.weight"):
        check_values("backward", "float64", BACKWARD, iter(dict(arriving(BACKWARD, invariant)).items()), GREEDYHASH)


def test_a_port_message_cut_short_fails_the_step_naming_the_side_and_its_log(tmp_path):
    whole = stream_of((BACKWARD_RUN, BACKWARD)).getvalue()
    streams = {"torch": stream_of((BACKWARD_RUN, BACKWARD)), "paddle": io.BytesIO(whole[:-8])}
    [result] = check_streams(run_args(tmp_path, steps="backward"), GREEDYHASH, streams,
                             {"torch": "t.log", "paddle": "p.log"})
    assert [key.name for key in result.keys] == [SIDE_PROCESS]
    assert "paddle side sent a broken message (grad_cross_entropy.b: the side ended within its values), see p.log" \
        == result.keys[0].note
