"""Where Paddle's GPU build finds each CUDA library, asked of Paddle's own loaders (no GPU needed).

  python -m tools.gpu_libraries [--json FILE]      (run it with the GPU environment's interpreter)

Each of Paddle's loaders (phi::dynload::Get*DsoHandle, exported by paddle/libs/libphi.so) is called as
Paddle calls it before its first use of the library, and the file it opened is read from this process's
memory map: its real path, and whether it lies in this environment. A loader that cannot find its library
ends the process (Paddle throws): it is then named with Paddle's own message and the others go on in a
fresh process. The NVIDIA driver (libcuda, which only the driver installs) is asked for the same way, and
what Paddle says when it is missing is recorded. Exits 1 if a library Paddle needs is not found in this
environment, 0 otherwise (a missing driver is reported, not a failure: CI has none).
"""
import argparse
import ctypes
import json
import os
import re
import subprocess
import sys

from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import OneLineArgumentParser, exits_cleanly_on_bad_input
from greedyhash_common.infra.paddle_cuda_libraries import unversioned
from greedyhash_common.infra.runtime_settings import quiet_paddle_import

# (library, Paddle's loader, the file name it asks dlopen for, what Paddle uses it for)
LIBRARIES = (
    ("cuBLAS", "GetCublasDsoHandle", "libcublas.so", "matrix products (Linear layers)"),
    ("cuBLASLt", "GetCublasLtDsoHandle", "libcublasLt.so", "fused matrix products"),
    ("cuDNN", "GetCUDNNDsoHandle", "libcudnn.so", "convolutions, pooling"),
    ("cuRAND", "GetCurandDsoHandle", "libcurand.so", "random numbers on the GPU"),
    ("cuSOLVER", "GetCusolverDsoHandle", "libcusolver.so", "linear algebra (the GPU context's handles)"),
    ("cuSPARSE", "GetCusparseDsoHandle", "libcusparse.so", "sparse algebra (the GPU context's handles)"),
    ("NCCL", "GetNCCLDsoHandle", "libnccl.so", "data parallel on several GPUs"),
    ("NVRTC", "GetNVRTCDsoHandle", "libnvrtc.so", "run-time compilation; cuBLAS tries it as it loads (cuDNN "
                                                  "aborts without it)"),
)
DRIVER = ("NVIDIA driver", "GetCUDADsoHandle", "libcuda.so", "the driver API; installed by the driver, not here")
# Loaders of libraries requirements-gpu.txt does not bring: Paddle calls them only for features this project
# does not use.
NOT_BUNDLED = {"cuFFT": "paddle.fft", "nvJPEG": "GPU JPEG decoding", "CUPTI": "the profiler",
               "NVTX": "the profiler's ranges"}
MARK = "gpu_libraries:"


def loader_symbol(loader):
    return f"_ZN3phi7dynload{len(loader)}{loader}Ev"


def mapped_files(stem):
    """Real paths of the files of this process's memory map named `stem` or `stem`.N (libcublas.so.11)."""
    with open("/proc/self/maps", encoding="utf-8") as handle:
        paths = {line.split()[-1] for line in handle if len(line.split()) >= 6}
    return sorted(path for path in paths if re.fullmatch(re.escape(stem) + r"(\.\d+)*", os.path.basename(path)))


def probe(names):
    """Calls each loader of `names` in turn (in this process), printing one JSON line per library."""
    quiet_paddle_import()
    import paddle

    phi = ctypes.CDLL(os.path.join(os.path.dirname(paddle.__file__), "libs", "libphi.so"))
    for library, loader, asked, _ in LIBRARIES + (DRIVER,):
        if library not in names:
            continue
        print(f"{MARK} {library}", file=sys.stderr, flush=True)  # Paddle's messages about it follow
        function = getattr(phi, loader_symbol(loader))
        function.restype = ctypes.c_void_p
        handle = function()
        files = mapped_files(asked) + (load_cudnn_parts() if library == "cuDNN" and handle else [])
        print(json.dumps({"library": library, "loaded": bool(handle), "files": files}), flush=True)


def load_cudnn_parts():
    """cuDNN 8 opens its parts (libcudnn_cnn_infer.so.8, ...) itself at its first use, from the folder it was
    opened from (paddle/libs): each is opened from there here, its own dependencies (cuBLAS) resolved as
    they would be then."""
    import paddle

    links = os.path.join(os.path.dirname(paddle.__file__), "libs")
    parts = sorted(name for name in os.listdir(links) if re.fullmatch(r"libcudnn_\w+\.so\.\d+", name))
    for name in parts:
        ctypes.CDLL(os.path.join(links, name))
    return [path for name in parts for path in mapped_files(unversioned(name))]


def paddle_messages(stderr, library):
    """Paddle's lines about `library` in a probe's stderr: its one-line error or warning."""
    part = stderr.split(f"{MARK} {library}\n", 1)[-1].split(MARK, 1)[0]
    found = re.findall(r"The third-party dynamic library \(\S+\) that Paddle depends on is not configured "
                       r"correctly\. \(error code is [^)]*\)", part)
    return found[0] if found else " ".join(part.split())[-400:]


def run_probes(python, names, environment):
    """{library: probe result}, restarting after a loader that ended its process."""
    results, left = {}, list(names)
    environment = {**environment, "GLOG_minloglevel": "1"}  # Paddle's loader warnings, which it logs at level 1
    while left:
        done = subprocess.run([python, "-m", "tools.gpu_libraries", "--probe", ",".join(left)],
                              cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), env=environment,
                              capture_output=True, text=True)
        for line in done.stdout.splitlines():
            if line.startswith("{"):
                result = json.loads(line)
                results[result["library"]] = {**result, "message": None if result["loaded"] else
                                              paddle_messages(done.stderr, result["library"])}
        left = [name for name in left if name not in results]
        if done.returncode == 0 or not left:
            break
        failed = left.pop(0)
        results[failed] = {"library": failed, "loaded": False, "files": [],
                           "message": paddle_messages(done.stderr, failed)}
    return results


def survey(python=sys.executable, environment=None):
    """The rows of the table: every library Paddle loads, then the driver; where each was found (by `python`
    run in `environment`, default this process's)."""
    prefix = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True,
                            check=True).stdout.strip()
    results = run_probes(python, [row[0] for row in LIBRARIES + (DRIVER,)], environment or os.environ)
    rows = []
    for library, loader, asked, use in LIBRARIES + (DRIVER,):
        result = results[library]
        files = [os.path.realpath(path) for path in result["files"]]
        inside = bool(files) and all(path.startswith(os.path.realpath(prefix) + os.sep) for path in files)
        rows.append({"library": library, "asks_for": asked, "used_for": use, "loaded": result["loaded"],
                     "found": files, "in_environment": inside, "message": result["message"],
                     "required": library != DRIVER[0]})
    return {"environment": prefix, "libraries": rows,
            "passed": all(row["loaded"] and row["in_environment"] for row in rows if row["required"]),
            "driver_found": rows[-1]["loaded"], "not_bundled": NOT_BUNDLED}


def markdown(result):
    lines = ["| library | Paddle asks for | found | |", "| --- | --- | --- | --- |"]
    for row in result["libraries"]:
        where = ", ".join(row["found"]) or "not found"
        if row["loaded"] and row["in_environment"]:
            verdict = "in the environment"
        elif row["loaded"]:
            verdict = "OUTSIDE the environment" if row["required"] else "the machine's"
        else:
            verdict = ("MISSING: " if row["required"] else "absent: ") + (row["message"] or "")
        lines.append(f"| {row['library']} | `{row['asks_for']}` | `{where}` | {verdict} |")
    lines.append("")
    lines.append("Not brought by requirements-gpu.txt (Paddle loads them only for): "
                 + "; ".join(f"{name}: {use}" for name, use in result["not_bundled"].items()) + ".")
    return "\n".join(lines)


@exits_cleanly_on_bad_input
def main(argv=None):
    parser = OneLineArgumentParser(prog="python -m tools.gpu_libraries", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the survey there")
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # internal: the libraries to load in this process
    args = parser.parse_args(argv)
    if args.probe:
        probe(args.probe.split(","))
        return
    result = survey()
    if args.json:
        write_text(args.json, json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
