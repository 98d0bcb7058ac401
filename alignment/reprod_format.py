"""reprod_log's file format without importing reprod_log (which imports paddle at import time).

A reprod_log file is `np.save` of a dict of arrays, so `reprod_log.ReprodDiffHelper().load_info`
reads what `save_values` writes. Reading goes through the restricted unpickler: a file handed over
by someone else is never executed.
"""
import numpy as np

from greedyhash_common.infra.atomic import atomic_path
from greedyhash_common.infra.safe_pickle import load_npy_dict

load_values = load_npy_dict


def save_values(values, path):
    for key, value in values.items():
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{key}: reprod_log stores numpy arrays, got {type(value).__name__}")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, dict(values), allow_pickle=True)

