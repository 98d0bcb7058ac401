"""Evaluation on the Paddle side: encode images into sign codes, then Hamming-ranking mAP.

  python -m paddle_impl.eval --checkpoint logs/train/paddle-bit48/best.pdparams [--ties expected] [--protocol ...]

Options the user leaves out (bit, data, split, image size) come from the training run beside the
checkpoint (its config.yaml), else from the defaults; the parser and the evaluation around `encode`
(greedyhash_common.app.checkpoint_tools) are shared with the torch side. One option is Paddle's own:
--engine, the network that encodes (paddle_impl.predict has it too).
`predictor` (the default) is the Paddle Inference predictor that paddle_impl.infer deploys
(paddle_impl.static_model: oneDNN kernels; speed: docs/performance.md, Benchmarks); `dynamic` is the
dynamic graph that training uses. The alignment suite checks both against torch (its `inference` and
`metric` steps).
"""
import numpy as np
import paddle

from greedyhash_common.app.checkpoint_tools import ToolSide, evaluate_checkpoint, evaluate_with, print_report
from greedyhash_common.app.cli_options import get_eval_args_parser
from greedyhash_common.app.run_files import checkpoint_tool_options
from greedyhash_common.app.training import deterministic_gpu_environment
from greedyhash_common.infra.errors import exits_cleanly_on_bad_input

from . import runtime
from .checkpoint import load_model_weights
from .device import current_device_name, select_device
from .fast_data import eval_loader
from .model import GreedyHash
from .static_model import InferenceEncoder

FRAMEWORK = "paddle"
ENGINES = ("predictor", "dynamic")


def encode(model, loader):
    """(codes, h, logits, labels) of every image of `loader`, in its order, in eval mode."""
    parameter = model.parameters()[0]
    model.eval()
    outputs = {"codes": [], "h": [], "logits": [], "labels": []}
    with paddle.no_grad():
        for images, labels in loader:
            logits, h, codes = model(images.astype(parameter.dtype))
            for name, value in (("codes", codes), ("h", h), ("logits", logits), ("labels", labels)):
                outputs[name].append(value.numpy())
    return tuple(np.concatenate(outputs[name]) for name in ("codes", "h", "logits", "labels"))


def evaluate(model, query_loader, database_loader, ties="index", encoder=None):
    """{"map", "query_accuracy"}: mAP of the query set against the whole database. `encoder(loader)`
    returns what `encode` does; default: `encode` on `model`."""
    return evaluate_with(encoder or (lambda loader: encode(model, loader)), query_loader, database_loader, ties)


def add_engine_option(parser):
    parser.add_argument("--engine", choices=ENGINES, default=ENGINES[0],
                        help="the network that encodes: the Paddle Inference predictor (default) or the dynamic graph")
    return parser


def get_args_parser():
    return add_engine_option(get_eval_args_parser(FRAMEWORK))


def encoder_for(model, options):
    """The tools' encoder (eval, predict): loader -> what `encode` returns, by options["engine"]."""
    if options["engine"] == "predictor":
        return InferenceEncoder(model, options["image_size"], options["threads"], current_device_name()).encode
    return lambda loader: encode(model, loader)


def load_trained_model(options):
    """The model of `options["checkpoint"]` on the chosen device, in eval mode."""
    if options["deterministic"]:
        deterministic_gpu_environment()
    runtime.configure(options["threads"], options["deterministic"])
    select_device(options["device"])  # layers are made on Paddle's current device
    model = GreedyHash(options["bit"])
    load_model_weights(model, options["checkpoint"])
    model.eval()
    return model


TOOL_SIDE = ToolSide(load_trained_model, encoder_for, eval_loader, runtime.describe)


@exits_cleanly_on_bad_input
def main(argv=None):
    options = checkpoint_tool_options(get_args_parser().parse_args(argv), FRAMEWORK, ties="index")
    report = evaluate_checkpoint(TOOL_SIDE, options)
    report["engine"] = options["engine"]
    print_report(report, options["json"])


if __name__ == "__main__":
    main()
