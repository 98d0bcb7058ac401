"""Wall time and peak memory of a command and every process it starts.

  python -m benchmarks.process_peak --output result.json -- COMMAND ...

Run in a process of its own, so that `getrusage(RUSAGE_CHILDREN)` covers this command's processes only:
its ru_maxrss is the peak resident memory of the largest of them (each process waited for by its
parent counts). The memory of processes running at the same time (the alignment suite runs its two
sides at once) is summed by sampling /proc every `interval` seconds; a peak shorter than the
interval can be missed, so that figure is a lower bound.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import OneLineArgumentParser

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


def tree_resident_bytes(root):
    """Resident memory of `root` and all its descendants now (shared pages counted in each process)."""
    children, total, stack = _children_map(), 0, [root]
    while stack:
        pid = stack.pop()
        total += _resident_bytes(pid)
        stack.extend(children.get(pid, ()))
    return total


def run(command, cwd=None, env=None, stdout=None, stderr=None, interval=SAMPLE_SECONDS):
    """Run `command` to the end; {"returncode", "wall_seconds", "peak_tree_rss_mb", "peak_process_rss_mb"}.
    The last is exact only when this process has started no other child before (see the module doc)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=stdout, stderr=stderr)
    peak_tree = 0
    while process.poll() is None:
        peak_tree = max(peak_tree, tree_resident_bytes(process.pid))
        time.sleep(interval)
    wall = time.perf_counter() - started
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / (2 ** 20 if sys.platform == "darwin" else 2 ** 10)
    return {"returncode": process.returncode, "wall_seconds": wall, "peak_tree_rss_mb": peak_tree / 2 ** 20,
            "peak_process_rss_mb": largest}


def measure(command, cwd=None, env=None, log_path=None):
    """`run` of `command` from a fresh process of this module (so the largest-process peak is exact)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-peak-") as folder:
        result_path = os.path.join(folder, "result.json")
        wrapper = [sys.executable, "-m", "benchmarks.process_peak", "--output", result_path]
        if log_path:
            wrapper += ["--log", log_path]
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
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    if args.log:
        with open(args.log, "w", encoding="utf-8") as handle:
            result = run(command, stdout=handle, stderr=subprocess.STDOUT)
    else:
        result = run(command)
    write_text(args.output, json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
