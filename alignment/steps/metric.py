"""metric: both frameworks encode every query and database image with the same weights; the codes
must be identical, and mAP (both tie modes) and query accuracy are computed on each side's codes."""
import numpy as np

from greedyhash_common.dataset import load_data
from greedyhash_common.hamming_map import mean_average_precision

CODE_KEYS = {"query_codes": "query_h", "database_codes": "database_h"}
EVAL_BATCH_SIZE = 100


def run(side, context):
    model = side.build_model(context.bit, context.dtype, context.weights)
    prepared = load_data(context.data, context.split_file)
    encoded = {}
    for part in ("query", "database"):
        loader = side.data.eval_loader(*prepared.subset(part), EVAL_BATCH_SIZE, size=context.bulk_image_size)
        encoded[part] = side.evaluation.encode(model, loader)
    (query_codes, query_h, query_logits, query_labels), (database_codes, database_h, _, database_labels) = (
        encoded["query"], encoded["database"])
    return {
        "query_codes": query_codes, "query_h": query_h, "database_codes": database_codes, "database_h": database_h,
        "map": np.array(mean_average_precision(query_codes, database_codes, query_labels, database_labels)),
        "map_expected": np.array(mean_average_precision(query_codes, database_codes, query_labels,
                                                          database_labels, ties="expected")),
        "query_accuracy": np.array(np.mean(query_logits.argmax(1) == query_labels)),
    }
