"""A side's process keeps freed arrays for the next allocation (alignment/sides/allocator.py): a large
array made again after being freed faults no pages in, where glibc's defaults fault every one."""
import gc
import subprocess
import sys
import types
import weakref

import alignment.sides
from alignment.sides import allocator
from greedyhash_common.project import PROJECT_ROOT, child_environment

# A 256 MB array made, freed, made again: the minor page faults of the second making, in a fresh process
# (numpy's transparent huge pages off, so that a fault is one 4 KB page, as in the sides' framework tensors)
SECOND_ALLOCATION_FAULTS = """
import resource, sys
import numpy as np
from alignment.sides.allocator import keep_freed_memory
np._core.multiarray._set_madvise_hugepage(False)
if sys.argv[1] == "keep":
    assert keep_freed_memory()
np.ones(2 ** 25)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(2 ** 25)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
PAGES = 2 ** 25 * 8 // 4096


def second_allocation_faults(mode):
    done = subprocess.run([sys.executable, "-c", SECOND_ALLOCATION_FAULTS, mode], cwd=PROJECT_ROOT,
                          env=child_environment(), capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_a_freed_array_is_reused_without_page_faults():
    assert second_allocation_faults("keep") < PAGES // 100


def test_the_defaults_fault_every_page_in_again():
    """The planted defect: without the setting, the check above fails."""
    assert second_allocation_faults("default") >= PAGES * 9 // 10


class Model:
    """A step's model as the frameworks leave it: held by a reference cycle (its hooks refer back to it)."""

    def __init__(self):
        self.hooks = [self]


def step_left_a_model_in_a_cycle():
    gc.disable()  # as between the collector's own runs
    model = Model()
    left = weakref.ref(model)
    del model
    return left


def test_a_side_frees_the_model_a_step_left_in_a_cycle_before_the_next_step():
    left = step_left_a_model_in_a_cycle()
    try:
        allocator.free_step_garbage()
        assert left() is None
    finally:
        gc.enable()


def test_a_model_in_a_cycle_outlives_its_step_until_collected():
    """The planted defect: without the collection, the last step's model is still held when the next runs."""
    left = step_left_a_model_in_a_cycle()
    try:
        assert left() is not None
    finally:
        gc.enable()


SIDE_PROCESSES = ("alignment.worker", "alignment.layers.worker", "alignment.mutation.worker",
                  "alignment.pairs.greedyhash.curve_worker")


def test_every_side_process_keeps_freed_memory_and_a_run_in_the_callers_process_does_not(monkeypatch):
    """The suite's, the layers', the mutants' and the curve's side processes apply it on start; configured_side,
    which alignment.align also runs in the caller's process, leaves the caller's allocator alone (with it, a
    pytest process running the suite in-process grew to 14 GB)."""
    import importlib

    assert [name for name in SIDE_PROCESSES
            if not getattr(importlib.import_module(name).main, "keeps_freed_memory", False)] == []
    applied = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: applied.append(True))
    side = types.SimpleNamespace(configure=lambda threads: None)
    alignment.sides.configured_side("torch", 1, types.SimpleNamespace(side=lambda framework: side))
    assert applied == []
    allocator.in_a_side_process(lambda: None)()
    assert applied == [True]
