"""Predict one image on the Paddle side (torch_impl.predict mirrors it): its class and probability, its
hash code, and the nearest database images by Hamming distance, drawn as a PNG grid.

  python -m paddle_impl.predict --index 0                    (the first query image of the split)
  python -m paddle_impl.predict --image photo.png --top-k 10 --output grid.png

Options the user leaves out come from the training run beside the checkpoint (see paddle_impl.eval).
"""
import os

import numpy as np

from greedyhash_common.app import prediction
from greedyhash_common.app.cli_options import default_grid_path, get_predict_args_parser
from greedyhash_common.app.run_files import checkpoint_tool_options, tool_data
from greedyhash_common.infra.errors import exits_cleanly_on_bad_input

from .eval import add_engine_option, encoder_for, load_trained_model
from .fast_data import eval_loader

FRAMEWORK = "paddle"
NO_LABEL = -1  # the loader wants a label, and an image from a file has none


def get_args_parser():
    return add_engine_option(get_predict_args_parser(FRAMEWORK))


def predict(encoder, image, image_size):
    """(class probabilities, sign code, h) of one uint8 (32, 32, 3) image, preprocessed as in training."""
    codes, h, logits, _ = encoder(eval_loader(image[None], np.array([NO_LABEL]), 1, image_size))
    return prediction.softmax(logits[0]), codes[0], h[0]


@exits_cleanly_on_bad_input
def main(argv=None):
    options = checkpoint_tool_options(get_args_parser().parse_args(argv), FRAMEWORK, image=None, index=None,
                                      top_k=prediction.DEFAULT_TOP_K, output=default_grid_path(FRAMEWORK))
    with tool_data(options) as data:
        image, true_label, source = prediction.query_image(options, data)
        encoder = encoder_for(load_trained_model(options), options)
        probabilities, code, h = predict(encoder, image, options["image_size"])
        database_images, database_labels = data.subset("database")
        database_codes = encoder(eval_loader(database_images, database_labels, options["batch_size"],
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


if __name__ == "__main__":
    main()
