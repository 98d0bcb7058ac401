"""CUDA's libraries for Paddle's GPU build from the environment's own NVIDIA packages, without LD_LIBRARY_PATH.

paddlepaddle-gpu 2.6 loads cuBLAS, cuDNN, NCCL, ... with dlopen under their unversioned development names
(libcublas.so, libcudnn.so, ...; measured: tools.gpu_libraries asks Paddle's own loaders), searching
LD_LIBRARY_PATH, then paddle/libs (the RUNPATH of Paddle's library), then the system. The nvidia-*-cu11
packages of requirements-gpu.txt install the libraries as site-packages/nvidia/<name>/lib/libX.so.N, a
name and a folder Paddle never tries, and Paddle 2.6 reads no FLAGS_cudnn_dir & co. from the environment.
So paddle/libs gets a symbolic link to each of their files under the unversioned name, and one under the
file's own name: a library's $ORIGIN (where it looks for its own dependencies, libcublasLt.so.11 for
libcublas.so.11) is the folder of the link it was opened by. Made once, at the first start-up after the
install; nothing is linked for a CPU build or Paddle 3 (whose PyPI GPU builds look in site-packages
themselves), nor where the packages are absent.
"""
import glob
import importlib.util
import os
import re

LINK_FOLDER = ("paddle", "libs")
NVIDIA_FOLDER = "nvidia"


def site_packages_of(package):
    """The folder holding `package` in this interpreter's environment, or None (found without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.dirname(os.path.abspath(list(spec.submodule_search_locations)[0]))


def needs_links(site_packages):
    """True for a Paddle 2 CUDA build, told by its version file (importing paddle would load it already)."""
    try:
        with open(os.path.join(site_packages, "paddle", "version", "__init__.py"), encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return False
    version, cuda = (re.search(rf"^{key}\s*=\s*'([^']*)'", text, re.M) for key in ("full_version", "cuda_version"))
    return bool(version and cuda) and version.group(1).startswith("2.") and cuda.group(1) != "False"


def nvidia_library_files(site_packages):
    """Every shared library the nvidia-* packages installed: site-packages/nvidia/*/lib/libX.so.N."""
    return sorted(glob.glob(os.path.join(site_packages, NVIDIA_FOLDER, "*", "lib", "lib*.so.*")))


def unversioned(name):
    """libcublas.so.11 -> libcublas.so."""
    return name[:name.index(".so") + len(".so")]


def wanted_links(site_packages):
    """{link name in paddle/libs: relative target}, for every NVIDIA library file."""
    links = {}
    for path in nvidia_library_files(site_packages):
        target = os.path.relpath(path, os.path.join(site_packages, *LINK_FOLDER))
        name = os.path.basename(path)
        links[name] = target
        links.setdefault(unversioned(name), target)
    return links


def link_paddle_cuda_libraries():
    """Link this interpreter's NVIDIA libraries for its Paddle, if both are there (make_links)."""
    site_packages = site_packages_of("paddle")
    if site_packages is not None and site_packages_of(NVIDIA_FOLDER) == site_packages:
        make_links(site_packages)


def make_links(site_packages):
    """Make the links that are missing in site_packages/paddle/libs; quiet and harmless where there is
    nothing to link (not a Paddle 2 CUDA build) or no right to."""
    if not needs_links(site_packages):
        return
    folder = os.path.join(site_packages, *LINK_FOLDER)
    for name, target in wanted_links(site_packages).items():
        link = os.path.join(folder, name)
        if os.path.lexists(link):
            continue
        staged = f"{link}.{os.getpid()}.tmp"
        try:
            os.symlink(target, staged)
            os.replace(staged, link)  # another process making the same link at once: the same result
        except OSError:
            return  # a read-only environment: tools.gpu_libraries names what Paddle then cannot load
