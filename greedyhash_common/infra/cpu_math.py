"""The math-library setting both frameworks' runtimes apply: MKL's code path on AMD processors.

Paddle's CPU wheel (3.3.1) computes convolutions (im2col + GEMM) and Linear layers with the MKL it
bundles: MKL 2019 (paddle/libs/libmklml_intel.so, build 20190808). That MKL chooses its kernels by
CPU vendor, and on an AMD processor it takes a generic path much slower than its AVX2 path on the same
chip (measured: docs/performance.md, Threads and math library, and the benchmark's before and now
rows). MKL before 2020.1 reads MKL_DEBUG_CPU_TYPE=5 as "use the AVX2 kernels";
the variable is read at MKL's first call, so it must be set before the first computation:
`configure(threads, mkl_avx2_on_amd=True)` of either runtime, which every entry point calls first.

It is on by default. The AVX2 kernels round float32 differently (other summation order, fused
multiply-add): float64 still agrees with torch near-exactly, and the alignment suite's float32 checks
pass with it as without it (the float32 `train` step measured either way: docs/tolerances.md,
Training); a float32 max-pool or ReLU decision within rounding of a tie can go either way on either
path.

torch's MKL (2024) ignores the variable and torch's convolutions run on oneDNN, which chooses its
kernels by instruction set, not vendor; both runtimes set it alike so that the two processes run in
the same environment. Nothing is set on Intel processors (MKL's own choice is right there), on CPUs
without AVX2, or when the user has set the variable.
"""
import os

MKL_CPU_VARIABLE = "MKL_DEBUG_CPU_TYPE"
MKL_AVX2_CODE_PATH = "5"
VENDORS_MKL_MISJUDGES = ("AuthenticAMD", "HygonGenuine")
CPUINFO = "/proc/cpuinfo"


def cpu_vendor_and_flags(cpuinfo=CPUINFO):
    """(vendor id, set of feature flags) of the first processor in /proc/cpuinfo; (None, set()) elsewhere."""
    vendor, flags = None, set()
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "vendor_id" and vendor is None:
                    vendor = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
                if vendor is not None and flags:
                    break
    except OSError:
        pass
    return vendor, flags


def mkl_dispatch_environment(environ=None, cpuinfo=None):
    """{MKL_DEBUG_CPU_TYPE: "5"} on an AMD (or Hygon) CPU with AVX2 when the variable is unset, else {}."""
    environ = os.environ if environ is None else environ
    if MKL_CPU_VARIABLE in environ:
        return {}
    vendor, flags = cpu_vendor_and_flags(cpuinfo or CPUINFO)
    if vendor in VENDORS_MKL_MISJUDGES and "avx2" in flags:
        return {MKL_CPU_VARIABLE: MKL_AVX2_CODE_PATH}
    return {}


def mkl_dispatch_setting():
    """What MKL is told, for the runtimes' `describe`: the variable's value, or "vendor default"."""
    return os.environ.get(MKL_CPU_VARIABLE, "vendor default")
