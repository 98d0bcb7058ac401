"""One framework's side of tools.gpu_check, in its own process (the torch process never imports paddle).

  python -m tools.gpu_check_worker torch|paddle --workdir DIR --bit 48 [--device auto|cpu|gpu] [--layers]
  python -m tools.gpu_check_worker weights --workdir DIR --bit 48 [--seed 0] [--weights FILE]   (torch only)

Runs the alignment suite's batch through the model in eval mode, forward and backward, in float64 on
the CPU (the reference) and in float32 and float64 on the device (the GPU when this framework sees one,
else the CPU), and saves, for each run, the logits, h, b, both loss terms and their total, and the
gradients of the input, of h and of every parameter (by torch name, in torch's layout):
<workdir>/<framework>_<device>_<dtype>.npy, plus <framework>_env.json.

--layers records instead every layer of the float32 run on the device, as the alignment suite's layer
localization does (alignment.layers.worker), eval and train mode: <workdir>/layers_<framework>.npy and
.json; the Paddle side runs after torch's, reads its record and feeds each Paddle layer torch's values
(<workdir>/layers_isolated_paddle.npy). tools.gpu_check asks for it when the float32
gradients differ, to tell a decision flipped by rounding from a layer that computes something else.

`weights` writes the weights both sides start from, <workdir>/inputs/weights.pth and its conversion
weights.pdparams: torch's seeded initialization, or a GreedyHash checkpoint of either framework.
"""
import argparse
import importlib
import json
import os
import time

import numpy as np

from alignment.layers.localize import read_record, write_structure
from alignment.reprod_format import save_values
from alignment.sides import patched
from alignment.steps import StepContext
from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import OneLineArgumentParser, UserInputError, exits_cleanly_on_bad_input
from greedyhash_common.infra.runtime_settings import quiet_paddle_import


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m tools.gpu_check_worker", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("framework", choices=("torch", "paddle", "weights"))
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--bit", type=int, required=True)
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layers", action="store_true", help="record every layer of the float32 run instead")
    parser.add_argument("--seed", type=int, default=0,
                        help="weights: seed of the initialization; --layers: of the injected dropout masks")
    parser.add_argument("--weights", help="weights: a GreedyHash checkpoint (.pth or .pdparams) instead")
    return parser


def inputs_path(workdir, name):
    return os.path.join(workdir, "inputs", name)


def write_weights(bit, seed, workdir, source=None):
    """weights.pth and weights.pdparams in <workdir>/inputs: the same weights in each framework's layout."""
    from alignment.pairs.greedyhash.weight_makers import seeded_model, write_both_layouts  # torch: the torch side only
    from torch_impl.weights import save_weights

    torch_file = inputs_path(workdir, "weights.pth")
    os.makedirs(os.path.dirname(torch_file), exist_ok=True)
    if source is None:
        save_weights(seeded_model(bit, seed), torch_file)
        source = torch_file
    write_both_layouts(source, bit, torch_file, inputs_path(workdir, "weights.pdparams"))


class TorchDevice:
    """Puts the torch side's model and tensors on a device ('cpu' or 'gpu')."""

    def __init__(self, side):
        import torch

        # the side's own build, kept: record_layers puts this object's model() in its place
        self.torch, self.build_model = torch, side.build_model

    def available(self):
        return self.torch.cuda.is_available()

    def use(self, device):
        self.device = self.torch.device("cuda" if device == "gpu" else "cpu")

    def model(self, bit, dtype, weights):
        return self.build_model(bit, dtype, weights).to(self.device)

    def tensor(self, array, requires_grad=False):
        return self.torch.from_numpy(np.ascontiguousarray(array)).to(self.device).requires_grad_(requires_grad)

    def name(self):
        return self.torch.cuda.get_device_name() if self.device.type == "cuda" else "cpu"


class PaddleDevice:
    """Makes a device Paddle's current one: the model and tensors the side creates go there."""

    def __init__(self, side):
        import paddle

        # the side's own build and tensor, kept: record_layers puts this object's in their place
        self.paddle, self.has_gpu = paddle, side.runtime.has_gpu
        self.build_model, self.make_tensor = side.build_model, side.tensor

    def available(self):
        return self.has_gpu()

    def use(self, device):
        self.paddle.set_device("gpu:0" if device == "gpu" else "cpu")

    def model(self, bit, dtype, weights):
        return self.build_model(bit, dtype, weights)

    def tensor(self, array, requires_grad=False):
        return self.make_tensor(array, requires_grad)

    def name(self):
        return (self.paddle.device.cuda.get_device_name() if self.paddle.get_device().startswith("gpu")
                else "cpu")


def forward_and_backward(side, place, bit, dtype, weights, images, labels):
    model = place.model(bit, dtype, weights)
    inputs = place.tensor(images.astype(dtype), requires_grad=True)
    logits, h, b = model(inputs)
    total, cross_entropy, quantization = side.loss(logits, h, place.tensor(labels))
    values = {"logits": side.numpy(logits), "h": side.numpy(h), "b": side.numpy(b),
              "loss_total": side.numpy(total), "loss_cross_entropy": side.numpy(cross_entropy),
              "loss_quantization": side.numpy(quantization)}
    values["grad.h"], values["grad.input"] = side.gradients(total, [h, inputs])
    side.backward(total)
    values.update({"grad." + name: grad for name, grad in side.parameter_gradients(model).items()})
    return {key: np.asarray(value) for key, value in values.items()}


def run_path(workdir, framework, device, dtype):
    return os.path.join(workdir, f"{framework}_{device}_{dtype}.npy")


def layers_path(workdir, framework, suffix=".npz"):
    return os.path.join(workdir, f"layers_{framework}{suffix}")


def isolated_path(workdir, framework):
    return os.path.join(workdir, f"layers_isolated_{framework}.npz")


def load_layer_record(workdir, framework):
    return read_record(layers_path(workdir, framework), layers_path(workdir, framework, ".json"))


def record_layers(side, place, framework, context, workdir, env):
    """The float32 run's layer record on the device (alignment.layers.worker.record_side, with the side's
    models and tensors put on the device); the Paddle side's with torch's values fed to its layers."""
    from alignment.layers.worker import record_side

    hooks = importlib.import_module(f"alignment.sides.{framework}_layers")
    reference = load_layer_record(workdir, "torch") if framework == "paddle" else None
    with patched([(side, "build_model", place.model), (side, "tensor", place.tensor)]):
        record, _ = record_side(side, hooks, context, env, reference,
                                (layers_path(workdir, framework), isolated_path(workdir, framework)))
    write_structure(record, layers_path(workdir, framework, ".json"))


@exits_cleanly_on_bad_input
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    if args.framework == "weights":
        write_weights(args.bit, args.seed, args.workdir, args.weights)
        return
    quiet_paddle_import()
    from alignment.pairs.greedyhash import GREEDYHASH
    from alignment.sides import configured_side

    side = configured_side(args.framework, args.threads, GREEDYHASH)
    side.runtime.configure(args.threads, deterministic=True)  # cuDNN deterministic, TF32 off (torch)
    place = (TorchDevice if args.framework == "torch" else PaddleDevice)(side)
    gpu = place.available()
    if args.device == "gpu" and not gpu:
        raise UserInputError(f"--device gpu: {args.framework} sees no GPU")
    device = "gpu" if args.device == "gpu" or (args.device == "auto" and gpu) else "cpu"

    images = np.load(inputs_path(args.workdir, "images.npy"), allow_pickle=False)
    labels = np.load(inputs_path(args.workdir, "labels.npy"), allow_pickle=False)
    weights = inputs_path(args.workdir, "weights" + side.WEIGHTS_SUFFIX)
    if args.layers:
        started = time.perf_counter()
        place.use(device)
        context = StepContext(args.bit, "float32", weights, images, labels, args.seed, image_size=images.shape[-1],
                              pair=GREEDYHASH)
        record_layers(side, place, args.framework, context, args.workdir,
                      {**side.describe(args.threads, "float32"), "device": device})
        print(f"{args.framework} layers {device} float32: {time.perf_counter() - started:.1f} s", flush=True)
        return
    runs = [("cpu", "float64"), (device, "float32")] + ([(device, "float64")] if device != "cpu" else [])
    names = {}
    for run_device, dtype in runs:
        started = time.perf_counter()
        place.use(run_device)
        names[run_device] = place.name()
        save_values(forward_and_backward(side, place, args.bit, dtype, weights, images, labels),
                    run_path(args.workdir, args.framework, run_device, dtype))
        print(f"{args.framework} forward and backward {run_device} {dtype}: {time.perf_counter() - started:.1f} s",
              flush=True)  # alignment.suite.show_progress relays it
    env = {**side.describe(args.threads, "float32,float64"), "gpu_visible": gpu, "device": device,
           "device_names": names, "nvidia_tf32_override": os.environ.get("NVIDIA_TF32_OVERRIDE")}
    write_text(os.path.join(args.workdir, f"{args.framework}_env.json"), json.dumps(env, indent=2) + "\n")


if __name__ == "__main__":
    main()
