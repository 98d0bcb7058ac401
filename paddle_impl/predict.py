"""Predict one image on the Paddle side (torch_impl.predict mirrors it): its class and probability, its
hash code, and the nearest database images by Hamming distance, drawn as a PNG grid.

  python -m paddle_impl.predict --index 0                    (the first query image of the split)
  python -m paddle_impl.predict --image photo.png --top-k 10 --output grid.png

Options the user leaves out come from the training run beside the checkpoint (see paddle_impl.eval).
The prediction itself is greedyhash_common.app.checkpoint_tools', written once for both sides.
"""
from greedyhash_common.app.checkpoint_tools import predict_image
from greedyhash_common.app.cli_options import default_grid_path, get_predict_args_parser
from greedyhash_common.app.prediction import DEFAULT_TOP_K
from greedyhash_common.app.run_files import checkpoint_tool_options
from greedyhash_common.infra.errors import exits_cleanly_on_bad_input

from .eval import TOOL_SIDE, add_engine_option

FRAMEWORK = "paddle"


def get_args_parser():
    return add_engine_option(get_predict_args_parser(FRAMEWORK))


@exits_cleanly_on_bad_input
def main(argv=None):
    options = checkpoint_tool_options(get_args_parser().parse_args(argv), FRAMEWORK, image=None, index=None,
                                      top_k=DEFAULT_TOP_K, output=default_grid_path(FRAMEWORK))
    predict_image(TOOL_SIDE, options)


if __name__ == "__main__":
    main()
