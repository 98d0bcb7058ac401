"""One framework's side of tools.gpu_report, in its own process and environment (as tools.gpu_check_worker).

  python -m tools.gpu_report_worker versions torch|paddle --output FILE
  python -m tools.gpu_report_worker determinism torch|paddle --workdir DIR --bit 48 --device cpu|gpu [--tf32]

`versions`: the framework's version, the CUDA and cuDNN it was built with, the GPUs it sees.
`determinism`: the gpu-check batch and weights (DIR/inputs, written by tools.gpu_check) forward and
backward in float32 on the device, twice with the framework's defaults and twice with the deterministic
flags (the runtime's configure(deterministic=True)), each run saved as DIR/determinism_<framework>_<run>.npy.
With --tf32 (run without NVIDIA_TF32_OVERRIDE=0) one float32 run with TF32 allowed instead:
DIR/determinism_<framework>_tf32.npy.
"""
import argparse
import json
import os

import numpy as np

from alignment.reprod_format import save_values
from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import OneLineArgumentParser, UserInputError, exits_cleanly_on_bad_input
from greedyhash_common.infra.runtime_settings import quiet_paddle_import

from .gpu_check_worker import PaddleDevice, TorchDevice, forward_and_backward, inputs_path

DEFAULT_RUNS = ("default_1", "default_2")
DETERMINISTIC_RUNS = ("deterministic_1", "deterministic_2")


def run_path(workdir, framework, run):
    return os.path.join(workdir, f"determinism_{framework}_{run}.npy")


def versions(framework):
    if framework == "torch":
        import torch

        gpus = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
        return {"framework": "torch", "version": torch.__version__, "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(), "gpus": gpus}
    import paddle

    count = paddle.device.cuda.device_count() if paddle.is_compiled_with_cuda() else 0
    return {"framework": "paddle", "version": paddle.__version__, "cuda": paddle.version.cuda(),
            "cudnn": paddle.version.cudnn(), "gpus": [paddle.device.cuda.get_device_name(index)
                                                       for index in range(count)]}


def allow_tf32(framework):
    """TF32 as the framework has it by default on its own, made explicit for torch (its matmul default is off).
    Paddle 2.6 has no switch: the CUDA libraries decide, unless NVIDIA_TF32_OVERRIDE=0."""
    if framework == "torch":
        import torch

        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def determinism(args):
    from alignment.pairs.greedyhash import GREEDYHASH
    from alignment.sides import configured_side

    side = configured_side(args.framework, 1, GREEDYHASH)
    place = (TorchDevice if args.framework == "torch" else PaddleDevice)(side)
    if args.device == "gpu" and not place.available():
        raise UserInputError(f"--device gpu: {args.framework} sees no GPU")
    place.use(args.device)
    images = np.load(inputs_path(args.workdir, "images.npy"), allow_pickle=False)
    labels = np.load(inputs_path(args.workdir, "labels.npy"), allow_pickle=False)
    weights = inputs_path(args.workdir, "weights" + side.WEIGHTS_SUFFIX)

    def run(name):
        save_values(forward_and_backward(side, place, args.bit, "float32", weights, images, labels),
                    run_path(args.workdir, args.framework, name))

    if args.tf32:
        side.runtime.configure(1)
        allow_tf32(args.framework)
        run("tf32")
        return
    side.runtime.configure(1)
    for name in DEFAULT_RUNS:
        run(name)
    side.runtime.configure(1, deterministic=True)
    for name in DETERMINISTIC_RUNS:
        run(name)


@exits_cleanly_on_bad_input
def main(argv=None):
    parser = OneLineArgumentParser(prog="python -m tools.gpu_report_worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("versions", "determinism"))
    parser.add_argument("framework", choices=("torch", "paddle"))
    parser.add_argument("--output")
    parser.add_argument("--workdir")
    parser.add_argument("--bit", type=int, default=48)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="gpu")
    parser.add_argument("--tf32", action="store_true")
    args = parser.parse_args(argv)
    quiet_paddle_import()
    if args.part == "versions":
        write_text(args.output, json.dumps(versions(args.framework), indent=2) + "\n")
    else:
        determinism(args)


if __name__ == "__main__":
    main()
