"""Export a trained model as a static Paddle inference model (paddle.jit.save) for paddle_impl.infer.

  python -m paddle_impl.export --checkpoint logs/train/paddle-bit48/best.pdparams --output-dir logs/export/paddle-bit48

The folder receives model.json (model.pdmodel on Paddle 2.x), model.pdiparams and export.json (bit,
input size, class names, and the training run's data and split for infer --index). The exported model
is paddle_impl.static_model's inference program, the one the alignment suite's `inference` step checks:
it takes float32 images (N, 3, S, S), preprocessed as in training, and returns (class scores, h, sign codes).
"""
import contextlib
import os
import shutil
import tempfile
import uuid

import paddle

from greedyhash_common.app.cli_options import get_export_args_parser
from greedyhash_common.app.option_checks import check_output_dir
from greedyhash_common.app.prediction import write_json
from greedyhash_common.app.run_files import checkpoint_tool_options
from greedyhash_common.data.cifar10 import CLASS_NAMES
from greedyhash_common.infra.atomic import TEMPORARY_PREFIX
from greedyhash_common.infra.errors import exits_cleanly_on_bad_input

from .eval import load_trained_model
from .static_model import INPUT_NAME, OUTPUT_NAMES, save_inference_program

MODEL_PREFIX = "model"
METADATA_NAME = "export.json"


def default_export_dir(bit):
    return os.path.join("logs", "export", f"paddle-bit{bit}")


@contextlib.contextmanager
def atomic_directory(path):
    """Yield a temporary folder beside `path`; on success it replaces `path` whole, else it is deleted.
    A reader never finds the model of one export beside the parameters of another."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    new = os.path.join(parent, f"{TEMPORARY_PREFIX}export-{uuid.uuid4().hex}")
    os.mkdir(new)  # not mkdtemp: its folder would be private to the owner, and so would the export
    try:
        yield new
        old = None
        if os.path.exists(path):
            old = tempfile.mkdtemp(prefix=f"{TEMPORARY_PREFIX}old-export-", dir=parent)
            os.replace(path, os.path.join(old, "previous"))
        os.replace(new, path)
        if old:
            shutil.rmtree(old)
    finally:
        if os.path.exists(new):
            shutil.rmtree(new)


def export(model, image_size, output_dir, metadata):
    """Save the inference program for (N, 3, image_size, image_size) float32 input, with its metadata."""
    with atomic_directory(output_dir) as folder:
        save_inference_program(model, os.path.join(folder, MODEL_PREFIX), image_size)
        write_json(os.path.join(folder, METADATA_NAME), metadata)


@exits_cleanly_on_bad_input
def main(argv=None):
    options = checkpoint_tool_options(get_export_args_parser().parse_args(argv), "paddle", output_dir=None)
    output_dir = check_output_dir(options["output_dir"] or default_export_dir(options["bit"]), "--output-dir")
    model = load_trained_model({**options, "device": "cpu"})
    metadata = {"bit": options["bit"], "image_size": options["image_size"], "input": INPUT_NAME,
                "outputs": list(OUTPUT_NAMES), "class_names": list(CLASS_NAMES),
                "checkpoint": os.path.abspath(options["checkpoint"]), "paddle": paddle.__version__,
                "data": options["data"], "split_file": options["split_file"], "seed": options["seed"]}
    export(model, options["image_size"], output_dir, metadata)
    print(f"exported {options['checkpoint']} ({options['bit']} bits, input {options['image_size']} px) to "
          f"{output_dir}: {', '.join(sorted(os.listdir(output_dir)))}")


if __name__ == "__main__":
    main()
