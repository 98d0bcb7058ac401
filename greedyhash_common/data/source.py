"""Which CIFAR-10 files a run reads: the user's (a folder or the archive), or the built-in synthetic data,
generated once into a cache below the project and regenerated when missing or stale."""
import json
import os

from ..infra.atomic import write_text
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
    """Generate the synthetic CIFAR-10 once into the cache; regenerate a missing or stale copy."""
    wanted = builtin_parameters()
    stamp = BUILTIN_CACHE_DIR / _BUILTIN_STAMP_NAME
    if _read_stamp(stamp) != wanted or not _has_all_batches(BUILTIN_CACHE_DIR / FOLDER_NAME):
        write_synthetic_cifar10(BUILTIN_CACHE_DIR, wanted["images_per_class"], wanted["seed"])
        # Written last, so a generation cut short leaves no stamp and is redone next time.
        write_text(stamp, json.dumps(wanted, sort_keys=True))
    return str(BUILTIN_CACHE_DIR / FOLDER_NAME)


def _read_stamp(stamp):
    try:
        return json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _has_all_batches(folder):
    return all((folder / name).is_file() for name in BATCH_NAMES + (META_NAME,))
