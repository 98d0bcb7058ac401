"""The C allocator of a side's process: freed arrays kept for the next allocation of their size.

A side allocates and frees arrays of hundreds of megabytes over and over: a float64 AlexNet's
parameters, gradients, momentum and the optimizer's temporaries are 456 MB each, made again at every
training iteration. glibc gives every block above its mmap threshold (at most 32 MB by default) back to
the kernel when it is freed, so the next one of the same size faults each of its pages in again,
zero-filled by the kernel: most of the suite's system time and its tens of millions of minor page
faults (docs/performance.md, "The alignment suite's own cost"). With both thresholds raised the blocks
stay in the process's heap and are reused; the values computed do not change.

Between steps a side frees what only reference cycles still hold (`free_step_garbage`: a step's
model, its hooks and optimizer): left to the collector's own schedule, a float64 train case's model,
gradients and momentum (2 GB) stayed while the next case made its own. Freed, their blocks are reused
by the next step as above. (Giving the heap back to the system as well, malloc_trim, made the peak no
lower and faulted every page in again at the next step: 1.3 M more faults in the float64 steps.)

Only in a side's own process (`in_a_side_process` on its main): a run in the caller's process
(alignment.align, the zoo, the tests) leaves the caller's allocator as it was, since there the heap would
keep what every later computation freed (a pytest process grew to 14 GB with it).
"""
import ctypes
import ctypes.util
import functools
import gc

# mallopt's parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Blocks up to this size come from the heap (mallopt takes an int: its largest value)
HEAP_BLOCKS_UP_TO = 2 ** 31 - 1
# Freed memory at the heap's top up to this much stays in the process. Measured on a float64 train case
# (docs/performance.md): 512 MB saves as many page faults as 2 GB (0.7 M left of 5.5 M) and holds less
# memory (peak resident 3.27 GB, 3.42 GB with 2 GB kept, 2.95 GB with glibc's defaults)
KEPT_AT_TOP = 2 ** 29


def keep_freed_memory():
    """Raise glibc's mmap and trim thresholds in this process; False where the C library has no mallopt
    (not glibc: macOS, musl), where nothing changes."""
    library = ctypes.util.find_library("c")
    mallopt = getattr(ctypes.CDLL(library), "mallopt", None) if library else None
    if mallopt is None:
        return False
    return all(mallopt(parameter, value) == 1
               for parameter, value in ((M_MMAP_THRESHOLD, HEAP_BLOCKS_UP_TO), (M_TRIM_THRESHOLD, KEPT_AT_TOP)))


def free_step_garbage():
    """Free the objects only reference cycles hold, now: a step's model and what refers back to it."""
    gc.collect()


def in_a_side_process(main):
    """Decorate the main of a side's process: its allocator keeps freed memory before anything else runs."""
    @functools.wraps(main)
    def keeping_freed_memory(*arguments, **options):
        keep_freed_memory()
        return main(*arguments, **options)
    keeping_freed_memory.keeps_freed_memory = True
    return keeping_freed_memory
