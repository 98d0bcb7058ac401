"""Which CIFAR-10 files a run reads: the user's (a folder or the archive), or the built-in synthetic data,
generated once into a cache below the project and regenerated when missing, stale or edited (its stamp
holds the generation's parameters and every file's digest: greedyhash_common.infra.content_cache)."""
import os

from ..infra.content_cache import is_fresh, key_of, write_stamp
from ..project import PROJECT_ROOT
from .cifar10 import BATCH_NAMES, FOLDER_NAME, META_NAME, locate_cifar10
from .synthetic_cifar10 import builtin_parameters, write_synthetic_cifar10

BUILTIN_CACHE_DIR = PROJECT_ROOT / ".cache" / "builtin-cifar10"
_BUILTIN_STAMP_NAME = "builtin-parameters.json"


def resolve_data_path(path_or_none):
    """The CIFAR-10 source to read: the given one (folder or archive), or the built-in data if None."""
    if path_or_none is None:
        return _builtin_data_folder()
    return locate_cifar10(os.fspath(path_or_none))


def _builtin_data_folder():
    """Generate the synthetic CIFAR-10 once into the cache; regenerate a missing, stale or edited copy."""
    wanted = builtin_parameters()
    stamp, key = BUILTIN_CACHE_DIR / _BUILTIN_STAMP_NAME, key_of(wanted)
    files = [BUILTIN_CACHE_DIR / FOLDER_NAME / name for name in BATCH_NAMES + (META_NAME,)]
    if not is_fresh(stamp, key, files):
        write_synthetic_cifar10(BUILTIN_CACHE_DIR, wanted["images_per_class"], wanted["seed"])
        write_stamp(stamp, key, files)  # written last: a generation cut short leaves no stamp
    return str(BUILTIN_CACHE_DIR / FOLDER_NAME)
