"""Evaluation on the torch side: encode images into sign codes, then Hamming-ranking mAP.

  python -m torch_impl.eval --checkpoint logs/train/torch-bit48/best.pth [--ties expected] [--protocol ...]

Options the user leaves out (bit, data, split, image size) come from the training run beside the
checkpoint (its config.yaml), else from the defaults; the parser and the evaluation around `encode`
(greedyhash_common.app.checkpoint_tools) are shared with the Paddle side.
"""
import numpy as np
import torch

from greedyhash_common.app.checkpoint_tools import ToolSide, evaluate_checkpoint, evaluate_with, print_report
from greedyhash_common.app.cli_options import get_eval_args_parser
from greedyhash_common.app.run_files import checkpoint_tool_options
from greedyhash_common.app.training import deterministic_gpu_environment
from greedyhash_common.infra.errors import exits_cleanly_on_bad_input

from . import runtime
from .checkpoint import load_model_weights
from .device import select_device
from .fast_data import eval_loader
from .model import GreedyHash

FRAMEWORK = "torch"


def encode(model, loader):
    """(codes, h, logits, labels) of every image of `loader`, in its order, in eval mode."""
    parameter = next(model.parameters())
    model.eval()
    outputs = {"codes": [], "h": [], "logits": [], "labels": []}
    with torch.no_grad():
        for images, labels in loader:
            logits, h, codes = model(images.to(parameter.device, parameter.dtype))
            for name, value in (("codes", codes), ("h", h), ("logits", logits), ("labels", labels)):
                outputs[name].append(value.cpu().numpy())
    return tuple(np.concatenate(outputs[name]) for name in ("codes", "h", "logits", "labels"))


def evaluate(model, query_loader, database_loader, ties="index"):
    """{"map", "query_accuracy"}: mAP of the query set against the whole database."""
    return evaluate_with(lambda loader: encode(model, loader), query_loader, database_loader, ties)


def encoder_for(model, options):
    """The tools' encoder (eval, predict): loader -> what `encode` returns (paddle_impl.eval chooses one
    by --engine; torch has one)."""
    return lambda loader: encode(model, loader)


def get_args_parser():
    return get_eval_args_parser(FRAMEWORK)


def load_trained_model(options):
    """The model of `options["checkpoint"]` on the chosen device, in eval mode."""
    if options["deterministic"]:
        deterministic_gpu_environment()
    runtime.configure(options["threads"], options["deterministic"])
    device = select_device(options["device"])
    model = GreedyHash(options["bit"])
    load_model_weights(model, options["checkpoint"])
    model.to(device)
    model.eval()
    return model


TOOL_SIDE = ToolSide(load_trained_model, encoder_for, eval_loader, runtime.describe)


@exits_cleanly_on_bad_input
def main(argv=None):
    options = checkpoint_tool_options(get_args_parser().parse_args(argv), FRAMEWORK, ties="index")
    report = evaluate_checkpoint(TOOL_SIDE, options)
    print_report(report, options["json"])


if __name__ == "__main__":
    main()
