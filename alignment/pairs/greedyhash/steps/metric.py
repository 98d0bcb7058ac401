"""metric: both frameworks encode every query and database image with the same weights, each with the
encoder its evaluation and prediction use in the precision of the step (torch's model; Paddle's
dynamic graph); the codes must be identical, and mAP (both tie modes) and query accuracy are computed
on each side's codes. The `inference` step does the same with Paddle's deployed encoder."""
import numpy as np

from greedyhash_common.data.dataset import load_data
from greedyhash_common.metric.hamming_map import mean_average_precision

from alignment.cases import BULK, WEIGHTS
from ..tolerances import METRIC_STEP

USES = (WEIGHTS, BULK)
CODE_KEYS = {"query_codes": "query_h", "database_codes": "database_h"}
EVAL_BATCH_SIZE = 100
TOLERANCES = METRIC_STEP


def encoded_values(side, context, make_encoder):
    """The step's values, each part encoded by make_encoder(model)(loader) -> (codes, h, logits, labels)."""
    model = side.build_model(context.bit, context.dtype, context.weights)
    encode = make_encoder(model)
    prepared = load_data(context.data, context.split_file)
    encoded = {}
    for part in ("query", "database"):
        loader = side.fast_data.eval_loader(*prepared.subset(part), EVAL_BATCH_SIZE, context.image_size)
        encoded[part] = encode(loader)
    (query_codes, query_h, query_logits, query_labels), (database_codes, database_h, _, database_labels) = (
        encoded["query"], encoded["database"])
    return {
        "query_codes": query_codes, "query_h": query_h, "database_codes": database_codes, "database_h": database_h,
        "map": np.array(mean_average_precision(query_codes, database_codes, query_labels, database_labels)),
        "map_expected": np.array(mean_average_precision(query_codes, database_codes, query_labels,
                                                          database_labels, ties="expected")),
        "query_accuracy": np.array(np.mean(query_logits.argmax(1) == query_labels)),
    }


def run(side, context):
    return encoded_values(side, context, lambda model: lambda loader: side.evaluation.encode(model, loader))
