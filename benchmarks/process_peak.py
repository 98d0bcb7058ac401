"""Wall time, CPU time, page faults, peak memory and disk of a command and every process it starts.

  python -m benchmarks.process_peak --output result.json [--disk DIR] [--log FILE [--timestamps]] -- COMMAND ...

Run in a process of its own, so that `getrusage(RUSAGE_CHILDREN)` covers this command's processes only:
its ru_maxrss is the peak resident memory of the largest of them (each process waited for by its
parent counts), its user and system seconds and minor page faults are the whole tree's. The memory of
processes running at the same time (the alignment suite runs its two sides at once) is summed by
sampling /proc every `interval` seconds; a peak shorter than the interval can be missed, so that
figure is a lower bound. So is the peak disk use under --disk, sampled at the same times.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time

from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import OneLineArgumentParser

# This module run from this tree whatever the measured command's folder and PYTHONPATH (an older checkout's)
THIS_MODULE = ("import runpy, sys; sys.path.insert(0, {root!r}); "
               "runpy.run_module('benchmarks.process_peak', run_name='__main__', alter_sys=True)").format(
    root=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
SAMPLE_SECONDS = 0.2


def _children_map():
    """{parent pid: [child pids]} from /proc; empty where there is no /proc."""
    children = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return children
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(name))
    return children


def _resident_bytes(pid):
    try:
        with open(f"/proc/{pid}/statm", encoding="utf-8") as handle:
            return int(handle.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


def tree_resident(root):
    """{pid: resident bytes} of `root` and all its descendants now (shared pages counted in each process)."""
    children, resident, stack = _children_map(), {}, [root]
    while stack:
        pid = stack.pop()
        resident[pid] = _resident_bytes(pid)
        stack.extend(children.get(pid, ()))
    return resident


def command_line(pid):
    """A process's command line, its interpreter's path left out; "" once it has ended."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().decode(errors="replace").split("\0")
    except OSError:
        return ""
    return " ".join([os.path.basename(words[0]), *words[1:]]).strip()


LARGEST_PROCESSES = 5


def disk_bytes(folder):
    """Bytes the files under `folder` occupy on disk (allocated blocks, as du counts them); 0 when absent."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:  # removed while walking (an atomic write's temporary file)
                pass
    return total


def _copy_timestamped(source, log, started):
    """Each line of `source` into `log`, prefixed by the seconds since `started` at which it arrived."""
    for line in source:
        log.write(f"{time.perf_counter() - started:9.2f} {line}")
        log.flush()


def run(command, cwd=None, env=None, stdout=None, stderr=None, interval=SAMPLE_SECONDS, disk=None,
        timestamped_log=None):
    """Run `command` to the end; {"returncode", "wall_seconds", "peak_tree_rss_mb", "peak_process_rss_mb",
    "user_seconds", "system_seconds", "minor_page_faults", "largest_processes" (sampled)}, and "peak_disk_mb", "final_disk_mb" under the
    folder `disk` when given. Its output goes to `stdout` and `stderr`, or both line by line to the open
    file `timestamped_log`, each line prefixed with its arrival time. The figures from getrusage are
    exact only when this process has started no other child before (see the module doc)."""
    started = time.perf_counter()
    if timestamped_log is not None:
        stdout, stderr = subprocess.PIPE, subprocess.STDOUT
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=stdout, stderr=stderr,
                               text=timestamped_log is not None)
    copier = None
    if timestamped_log is not None:
        copier = threading.Thread(target=_copy_timestamped, args=(process.stdout, timestamped_log, started))
        copier.start()
    peak_tree = peak_disk = 0
    peaks = {}  # {pid: [peak resident bytes, command line]}: which process peaks
    while process.poll() is None:
        resident = tree_resident(process.pid)
        peak_tree = max(peak_tree, sum(resident.values()))
        for pid, size in resident.items():
            peak = peaks.setdefault(pid, [0, command_line(pid)])
            peak[0] = max(peak[0], size)
        if disk:
            peak_disk = max(peak_disk, disk_bytes(disk))
        time.sleep(interval)
    wall = time.perf_counter() - started
    if copier:
        copier.join()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    largest = usage.ru_maxrss / (2 ** 20 if sys.platform == "darwin" else 2 ** 10)
    result = {"returncode": process.returncode, "wall_seconds": wall, "peak_tree_rss_mb": peak_tree / 2 ** 20,
              "peak_process_rss_mb": largest, "user_seconds": usage.ru_utime, "system_seconds": usage.ru_stime,
              "minor_page_faults": usage.ru_minflt,
              "largest_processes": [{"command": command, "peak_rss_mb": size / 2 ** 20} for size, command in
                                    sorted(peaks.values(), reverse=True)[:LARGEST_PROCESSES]]}
    if disk:
        final = disk_bytes(disk)
        result.update(peak_disk_mb=max(peak_disk, final) / 2 ** 20, final_disk_mb=final / 2 ** 20)
    return result


def measure(command, cwd=None, env=None, log_path=None, disk=None, timestamps=False):
    """`run` of `command` from a fresh process of this module (so the figures from getrusage are exact):
    its output into `log_path` (each line with its arrival time if `timestamps`), the disk under `disk`."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-peak-") as folder:
        result_path = os.path.join(folder, "result.json")
        wrapper = [sys.executable, "-c", THIS_MODULE, "--output", result_path]
        if log_path:
            wrapper += ["--log", log_path, *(["--timestamps"] if timestamps else [])]
        if disk:
            wrapper += ["--disk", disk]
        done = subprocess.run([*wrapper, "--", *command], cwd=cwd, env=env)
        if not os.path.exists(result_path):
            return {"returncode": done.returncode, "wall_seconds": None, "peak_tree_rss_mb": None,
                    "peak_process_rss_mb": None}
        with open(result_path, encoding="utf-8") as handle:
            return json.load(handle)


def main(argv=None):
    parser = OneLineArgumentParser(prog="python -m benchmarks.process_peak", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True)
    parser.add_argument("--log", help="file receiving the command's output (default: this terminal)")
    parser.add_argument("--timestamps", action="store_true",
                        help="each line of the log prefixed with the seconds since the start at which it came")
    parser.add_argument("--disk", help="a folder whose disk use is sampled (peak and final)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    if args.log:
        with open(args.log, "w", encoding="utf-8") as handle:
            if args.timestamps:
                result = run(command, disk=args.disk, timestamped_log=handle)
            else:
                result = run(command, stdout=handle, stderr=subprocess.STDOUT, disk=args.disk)
    else:
        result = run(command, disk=args.disk)
    write_text(args.output, json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
