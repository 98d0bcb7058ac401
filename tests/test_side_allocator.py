"""A side's process keeps freed arrays for the next allocation (alignment/sides/allocator.py): a large
array made again after being freed faults no pages in, where glibc's defaults fault every one."""
import subprocess
import sys
import types

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


# A 256 MB array (less than the heap keeps at its top) made and freed with freed memory kept: the resident memory left, MB, before and after the
# memory is given back
RESIDENT_AFTER_A_STEP = """
import sys
import numpy as np
from alignment.sides.allocator import give_back_freed_memory, keep_freed_memory

def resident_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 >> 20

assert keep_freed_memory()
step_values = np.ones(2 ** 25)
del step_values
kept = resident_mb()
if sys.argv[1] == "give back":
    give_back_freed_memory()
print(kept, resident_mb())
"""


def resident_after_a_step(mode):
    done = subprocess.run([sys.executable, "-c", RESIDENT_AFTER_A_STEP, mode], cwd=PROJECT_ROOT,
                          env=child_environment(), capture_output=True, text=True, check=True)
    return [int(word) for word in done.stdout.split()]


def test_a_side_gives_back_what_a_step_freed():
    kept, given_back = resident_after_a_step("give back")
    assert kept >= 250 and given_back < 100


def test_without_giving_back_a_side_keeps_what_a_step_freed():
    """The planted defect: a side that never gives back holds its last step's memory into the next."""
    kept, left = resident_after_a_step("keep")
    assert kept >= 250 and left >= 250


SIDE_PROCESSES = ("alignment.side", "alignment.layers.side", "alignment.mutation.side",
                  "alignment.pairs.greedyhash.curve_side")


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
