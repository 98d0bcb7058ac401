"""Timing and memory helpers of the benchmark: runs after warm-up, median with min and max."""
import os
import resource
import statistics
import sys
import time


def timed_runs(function, warm_up, repeats, synchronize=None):
    """Seconds of each of `repeats` calls of `function`, after `warm_up` untimed calls."""
    synchronize = synchronize or (lambda: None)
    for _ in range(warm_up):
        function()
    synchronize()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        synchronize()
        seconds.append(time.perf_counter() - started)
    return seconds


def spread(values):
    """{"median", "min", "max", "runs"} of a list of numbers."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": len(values)}


def rates(seconds, items):
    """Items per second of each run, summarized: the median run's rate, the slowest's and the fastest's."""
    return spread([items / value for value in seconds])


def peak_rss_mb():
    """Peak resident memory of this process so far, in MB (ru_maxrss is KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2 ** 20 if sys.platform == "darwin" else 2 ** 10)


def load_average():
    """The 1-minute load average, or None where the system has none."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _busy_cpu_seconds():
    """CPU seconds spent by every process of the machine so far (from /proc/stat), or None."""
    try:
        with open("/proc/stat", encoding="utf-8") as handle:
            fields = [int(value) for value in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds():
    """CPU seconds of this process and of its children that have been waited for."""
    return sum(usage.ru_utime + usage.ru_stime for usage in (resource.getrusage(resource.RUSAGE_SELF),
                                                             resource.getrusage(resource.RUSAGE_CHILDREN)))


class OtherPrograms:
    """How busy the rest of the machine was during a measurement: the cores that other programs kept
    busy on average (the machine's CPU time minus this process's and its finished children's, over the
    wall time), and the 1-minute load average before (which a 2-thread benchmark itself raises)."""

    def __enter__(self):
        self.load_before = load_average()
        self.busy, self.own, self.started = _busy_cpu_seconds(), _own_cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.started
        busy = _busy_cpu_seconds()
        self.other_cores = None
        if busy is not None and self.busy is not None and wall > 0:
            self.other_cores = max(0.0, (busy - self.busy - (_own_cpu_seconds() - self.own)) / wall)
        return False

    def figures(self):
        return {"load_average_before": self.load_before, "other_programs_cores": self.other_cores}
