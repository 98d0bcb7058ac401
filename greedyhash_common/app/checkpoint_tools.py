"""Evaluation and prediction from a trained checkpoint, written once for both frameworks.

Each side's `eval` and `predict` modules are entry points: they parse their options and hand over, as a
ToolSide, what differs between the frameworks (loading the model, the encoder, the loader, the runtime's
description); everything else happens here, so the two sides cannot drift apart.
"""
import dataclasses
import os
import time
from typing import Callable

import numpy as np

from ..metric.hamming_map import mean_average_precision
from . import prediction
from .run_files import evaluation_report, tool_data
from .training import with_progress

NO_LABEL = -1  # the loader wants a label, and an image from a file has none


@dataclasses.dataclass(frozen=True)
class ToolSide:
    """What the checkpoint tools need of one framework."""

    load_trained_model: Callable  # options -> the model of options["checkpoint"], in eval mode
    encoder_for: Callable  # (model, options) -> encoder: loader -> (codes, h, logits, labels)
    eval_loader: Callable  # (images, labels, batch_size, size, workers) -> loader in dataset order
    describe_runtime: Callable  # (threads, dtype) -> the runtime's description for the report


def evaluate_with(encoder, query_loader, database_loader, ties="index"):
    """{"map", "query_accuracy"}: mAP of the query set against the whole database, both encoded by
    `encoder(loader)`, which returns (codes, h, logits, labels)."""
    query_codes, _, query_logits, query_labels = encoder(with_progress(query_loader, "encoding the queries"))
    database_codes, _, _, database_labels = encoder(with_progress(database_loader, "encoding the database"))
    return {"map": mean_average_precision(query_codes, database_codes, query_labels, database_labels, ties=ties),
            "query_accuracy": float(np.mean(query_logits.argmax(1) == query_labels))}


def evaluate_checkpoint(side, options):
    """The evaluation report of options["checkpoint"] on the query and database sets of its run's split."""
    model = side.load_trained_model(options)
    with tool_data(options) as data:
        query_loader, database_loader = (
            side.eval_loader(*data.subset(part), options["batch_size"], options["image_size"], options["num_workers"])
            for part in ("query", "database"))
        started = time.perf_counter()
        metrics = evaluate_with(side.encoder_for(model, options), query_loader, database_loader, options["ties"])
        return evaluation_report(options, data, metrics, time.perf_counter() - started,
                                 side.describe_runtime(options["threads"], "float32"))


def print_report(report, json_path):
    print("\n".join(f"{key}: {value}" for key, value in report.items()))
    if json_path:
        prediction.write_json(json_path, report)


def encode_image(side, encoder, image, image_size):
    """(class probabilities, sign code, h) of one uint8 (32, 32, 3) image, preprocessed as in training."""
    codes, h, logits, _ = encoder(side.eval_loader(image[None], np.array([NO_LABEL]), 1, image_size))
    return prediction.softmax(logits[0]), codes[0], h[0]


def predict_image(side, options):
    """Predict options' query image with options["checkpoint"]: its class, its code and its nearest database
    images, drawn as a grid into options["output"]; print the result and write it to options["json"]."""
    with tool_data(options) as data:
        image, true_label, source = prediction.query_image(options, data)
        encoder = side.encoder_for(side.load_trained_model(options), options)
        probabilities, code, h = encode_image(side, encoder, image, options["image_size"])
        database_images, database_labels = data.subset("database")
        database_codes = encoder(side.eval_loader(database_images, database_labels, options["batch_size"],
                                                  options["image_size"], options["num_workers"]))[0]
        result = prediction.classification(probabilities, code, h, true_label, source)
        result["neighbours"] = prediction.nearest_neighbours(code, database_codes, database_labels,
                                                             data.split.database, options["top_k"])
    prediction.write_retrieval_grid(options["output"], image, result, result["neighbours"], database_images)
    result["grid"] = os.path.abspath(options["output"])
    print("\n".join(prediction.classification_lines(result)))
    print(f"nearest {len(result['neighbours'])} database images (grid: {result['grid']}):")
    print("\n".join(prediction.neighbour_lines(result["neighbours"])))
    if options["json"]:
        prediction.write_json(options["json"], result)
