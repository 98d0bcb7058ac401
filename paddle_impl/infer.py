"""Run an exported model (paddle_impl.export) with the Paddle Inference predictor: class, probability, code.

  python -m paddle_impl.infer --model-dir logs/export/paddle-bit48 --image photo.png
  python -m paddle_impl.infer --model-dir logs/export/paddle-bit48 --index 0      (a query image of the split)

On the CPU by default, on the GPU when there is one (--device chooses). Images are preprocessed exactly as
in training (paddle_impl.data.reference_transform), at the input size recorded in export.json. The
predictor is paddle_impl.static_model's, configured as the one the alignment suite checks.
"""
import contextlib
import json
import os

import numpy as np
from PIL import Image

from greedyhash_common.app import prediction
from greedyhash_common.app.cli_options import DEFAULT_BIT, default_threads, get_infer_args_parser, resolve_device
from greedyhash_common.app.option_checks import check_image_size, check_output_file
from greedyhash_common.app.run_files import TOOL_DEFAULTS, tool_data
from greedyhash_common.infra.errors import UserInputError, exits_cleanly_on_bad_input, one_line_reason

from . import runtime
from .data import reference_transform
from .export import METADATA_NAME, MODEL_PREFIX, default_export_dir
from .static_model import PARAMETERS_SUFFIX, Predictor, create_predictor as predictor_of_program, program_path


def read_metadata(model_dir):
    path = os.path.join(model_dir, METADATA_NAME)
    try:
        with open(path, encoding="utf-8") as handle:
            metadata = json.load(handle)
    except FileNotFoundError:
        raise UserInputError(f"{model_dir}: no exported model here ({METADATA_NAME} is missing); "
                             "write one with python -m paddle_impl.export") from None
    except (OSError, ValueError) as error:
        raise UserInputError(f"{path}: unreadable export metadata ({error})") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("image_size"), int):
        raise UserInputError(f"{path}: not the metadata paddle_impl.export writes")
    check_image_size(metadata["image_size"], f"{path}: image_size")
    return metadata


def create_predictor(model_dir, device, threads):
    """The static_model.Predictor of the model exported in `model_dir`."""
    prefix = os.path.join(model_dir, MODEL_PREFIX)
    if program_path(prefix) is None or not os.path.isfile(prefix + PARAMETERS_SUFFIX):
        raise UserInputError(f"{model_dir}: the exported model files ({MODEL_PREFIX}.json or .pdmodel, and "
                             f"{MODEL_PREFIX}{PARAMETERS_SUFFIX}) are missing")
    try:
        return Predictor(predictor_of_program(prefix, threads, device))
    except Exception as error:  # Paddle raises several types for a corrupt program or parameter file
        raise UserInputError(f"{model_dir}: the predictor cannot load this model ({one_line_reason(error)})") from None


def preprocess(images, image_size):
    """uint8 (N, 32, 32, 3) images -> float32 (N, 3, S, S), as the training loader prepares them."""
    transform = reference_transform(image_size)
    return np.stack([np.asarray(transform(Image.fromarray(image)), dtype=np.float32) for image in images])


def run_predictor(predictor, batch, model_dir):
    """(probabilities, codes, h) of a preprocessed float32 batch."""
    try:
        logits, h, codes = predictor(batch)
    except Exception as error:  # a program that loads but does not run (a dtype changed in model.json)
        raise UserInputError(f"{model_dir}: the predictor cannot run this model ({one_line_reason(error)})") from None
    return prediction.softmax(logits), codes, h


@contextlib.contextmanager
def query_data(options):
    """The data of the exported model's training run, needed only for --index."""
    if options.get("index") is None:
        yield None
        return
    with tool_data(options) as data:
        yield data


@exits_cleanly_on_bad_input
def main(argv=None):
    given = vars(get_infer_args_parser().parse_args(argv))
    model_dir = given.get("model_dir") or default_export_dir(DEFAULT_BIT)
    metadata = read_metadata(model_dir)
    inherited = {key: metadata.get(key) for key in ("data", "split_file", "seed", "image_size")
                 if metadata.get(key) is not None}
    options = {**TOOL_DEFAULTS, "image": None, "index": None, **inherited, **given}
    if options["json"] is not None:
        check_output_file(options["json"], "--json")
    if "split_file" not in given and not (options["split_file"] and os.path.isfile(options["split_file"])):
        options["split_file"] = None
    threads = options["threads"] or default_threads()
    runtime.configure(threads)
    device = resolve_device(options["device"], runtime.has_gpu(), "paddle")
    with query_data(options) as data:
        image, true_label, source = prediction.query_image(options, data)
    predictor = create_predictor(model_dir, device, threads)
    probabilities, codes, h = run_predictor(predictor, preprocess(image[None], metadata["image_size"]), model_dir)
    result = prediction.classification(probabilities[0], codes[0], h[0], true_label, source)
    print("\n".join(prediction.classification_lines(result)))
    if options["json"]:
        prediction.write_json(options["json"], result)


if __name__ == "__main__":
    main()
