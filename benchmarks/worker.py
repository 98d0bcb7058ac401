"""One benchmark measurement of one framework, in its own process (so its peak memory is its own).

  python -m benchmarks.worker torch|paddle ITEM VARIANT --output result.json [options]

Items (see `MEASUREMENTS`): `train` (the project's train_step: forward, loss, backward, optimizer),
`infer` (forward in eval mode without gradients), `loader` (the evaluation loader alone), `network`
(the project's `encode` on batches already in memory: the network alone), `encode` (`encode` on a
loader: loading, resizing, normalizing, network, sign, end to end). Only the chosen framework is
imported; its runtime sets the thread count, the same way on both sides.

Variants: `dynamic` (eager mode, torch's only one), `static` (paddle.jit.to_static through
paddle_impl.static_model), `predictor` (the Paddle Inference predictor: for `infer` the one of
paddle_impl.infer on the model paddle_impl.export writes, for `network` and `encode`
paddle_impl.static_model.InferenceEncoder), `reference` / `batched` (the loader: the reference
per-image one of <framework>_impl.data, the batched one of <framework>_impl.fast_data). A `+avx2` suffix configures the
runtime with mkl_avx2_on_amd=True (greedyhash_common.infra.cpu_math), on either side alike.
"""
import argparse
import importlib
import inspect
import json
import os
import tempfile

import numpy as np

from greedyhash_common.hyperparameters import BATCH_SIZE, IMAGE_SIZE, NUM_CLASSES
from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import OneLineArgumentParser
from greedyhash_common.infra.runtime_settings import quiet_paddle_import

from . import timing

DEFAULT_BIT = 48
WARM_UP_BATCHES = 2
DATA_SEED = 0
MODEL_SEED = 0


class Side:
    """What a measurement needs from one framework; TorchSide and PaddleSide fill it in."""

    name = None

    def __init__(self, threads, device, mkl_avx2_on_amd=False):
        self.impl = importlib.import_module(f"{self.name}_impl")
        self.runtime = importlib.import_module(f"{self.name}_impl.runtime")
        # the keyword only where the runtime has it, so that the benchmark also measures an older checkout
        has_setting = "mkl_avx2_on_amd" in inspect.signature(self.runtime.configure).parameters
        self.runtime.configure(threads, **({"mkl_avx2_on_amd": mkl_avx2_on_amd} if has_setting else {}))
        self.threads = threads
        self.data = importlib.import_module(f"{self.name}_impl.data")
        self.fast_data = importlib.import_module(f"{self.name}_impl.fast_data")
        self.evaluation = importlib.import_module(f"{self.name}_impl.eval")
        self.train_step = importlib.import_module(f"{self.name}_impl.train_step").train_step
        self.build_optimizer = importlib.import_module(f"{self.name}_impl.optim").build_optimizer
        self.model_class = importlib.import_module(f"{self.name}_impl.model").GreedyHash
        self.device = device

    def describe(self):
        return self.runtime.describe(self.threads, "float32")

    def loader(self, kind, images, labels, batch_size, size, workers):
        if kind == "reference":
            return self.data.eval_loader(images, labels, batch_size, size, num_workers=workers)
        return self.fast_data.eval_loader(images, labels, batch_size, size, workers=workers)


class TorchSide(Side):
    name = "torch"

    def __init__(self, threads, device, mkl_avx2_on_amd=False):
        super().__init__(threads, device, mkl_avx2_on_amd)
        import torch

        self.torch = torch
        self.torch_device = importlib.import_module("torch_impl.device").select_device(device)

    def model(self, bit, variant):
        self.torch.manual_seed(MODEL_SEED)
        return self.model_class(bit).to(self.torch_device)

    def tensors(self, images, labels):
        return (self.torch.from_numpy(images).to(self.torch_device),
                self.torch.from_numpy(labels).to(self.torch_device))

    def forward_without_gradients(self, model, images):
        with self.torch.no_grad():
            return model(images)

    def synchronize(self):
        if self.torch_device.type == "cuda":
            self.torch.cuda.synchronize()


class PaddleSide(Side):
    name = "paddle"

    def __init__(self, threads, device, mkl_avx2_on_amd=False):
        super().__init__(threads, device, mkl_avx2_on_amd)
        import paddle

        self.paddle = paddle
        importlib.import_module("paddle_impl.device").select_device(device)
        self._predictor_dir = None

    def model(self, bit, variant):
        self.paddle.seed(MODEL_SEED)
        model = self.model_class(bit)
        if variant == "static":
            model = importlib.import_module("paddle_impl.static_model").to_static(model)
        return model

    def tensors(self, images, labels):
        return self.paddle.to_tensor(images), self.paddle.to_tensor(labels)

    def forward_without_gradients(self, model, images):
        with self.paddle.no_grad():
            return model(images)

    def predictor(self, model, image_size):
        """The project's inference path: paddle_impl.export's static model in the Paddle Inference
        predictor that paddle_impl.infer creates."""
        export = importlib.import_module("paddle_impl.export")
        infer = importlib.import_module("paddle_impl.infer")
        self._predictor_dir = tempfile.TemporaryDirectory(prefix="bench-export-")
        folder = os.path.join(self._predictor_dir.name, "model")
        model.eval()
        export.export(model, image_size, folder, {"image_size": image_size})
        return (infer.create_predictor(folder, self.device or "cpu", self.threads),
                lambda predictor, batch: infer.run_predictor(predictor, batch, folder))

    def synchronize(self):
        if self.runtime.has_gpu() and self.paddle.get_device().startswith("gpu"):
            self.paddle.device.synchronize()


SIDES = {"torch": TorchSide, "paddle": PaddleSide}


def random_data(count, seed=DATA_SEED):
    """Seeded uint8 CIFAR-sized images (count, 32, 32, 3) and labels: the pipeline's speed does not
    depend on what the pixels show."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, NUM_CLASSES, count).astype(np.int64))


def random_batch(batch_size, image_size, seed=DATA_SEED):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch_size, 3, image_size, image_size)).astype(np.float32),
            rng.integers(0, NUM_CLASSES, batch_size).astype(np.int64))


def training_step(side, variant, args):
    """A function running one of the project's training steps on the benchmark's model and batch."""
    model = side.model(args.bit, variant)
    model.train()
    optimizer, _ = side.build_optimizer(model)
    images, labels = side.tensors(*random_batch(args.batch_size, args.image_size))
    return lambda: side.train_step(model, optimizer, images, labels)


def measure_train(side, variant, args):
    seconds = timing.timed_runs(training_step(side, variant, args), args.warm_up, args.repeats, side.synchronize)
    return seconds, args.batch_size


def measure_infer(side, variant, args):
    model = side.model(args.bit, variant)
    model.eval()
    images, labels = random_batch(args.batch_size, args.image_size)
    if variant == "predictor":
        predictor, run_predictor = side.predictor(model, args.image_size)
        step = lambda: run_predictor(predictor, images)  # noqa: E731 (numpy in, numpy out, as infer does)
    else:
        tensor, _ = side.tensors(images, labels)
        step = lambda: side.forward_without_gradients(model, tensor)  # noqa: E731
    return timing.timed_runs(step, args.warm_up, args.repeats, side.synchronize), args.batch_size


def _passes(side, one_pass, images, labels, args):
    """Seconds of `args.passes` timed passes over all images, after `args.warm_up_passes` passes over
    the first two batches (enough to warm caches, compile a static graph, start the threads)."""
    warm_up = WARM_UP_BATCHES * args.eval_batch_size
    for _ in range(args.warm_up_passes):
        one_pass(images[:warm_up], labels[:warm_up])
    return timing.timed_runs(lambda: one_pass(images, labels), 0, args.passes, side.synchronize)


def measure_loader(side, variant, args):
    def one_pass(images, labels):
        for _ in side.loader(variant, images, labels, args.eval_batch_size, args.image_size, args.loader_workers):
            pass

    return _passes(side, one_pass, *random_data(args.images), args), args.images


def _encoder(side, variant, args):
    """encode(loader) of the project (eval.encode) on the model of `variant`, or of the predictor."""
    if variant == "predictor":
        model = side.model(args.bit, "dynamic")
        return importlib.import_module("paddle_impl.static_model").InferenceEncoder(
            model, args.image_size, args.threads, args.device).encode
    model = side.model(args.bit, variant)
    return lambda loader: side.evaluation.encode(model, loader)


def measure_network(side, variant, args):
    encode = _encoder(side, variant, args)
    images, labels = random_data(args.images)
    batches = list(side.loader("batched", images, labels, args.eval_batch_size, args.image_size, 0))
    per_batch = args.eval_batch_size

    def one_pass(images_, labels_):
        encode(batches[:-(-len(images_) // per_batch)])

    return _passes(side, one_pass, images, labels, args), args.images


def measure_encode(side, variant, args):
    loader_kind, _, network = variant.partition("+")
    encode = _encoder(side, network or "dynamic", args)

    def one_pass(images, labels):
        encode(side.loader(loader_kind, images, labels, args.eval_batch_size, args.image_size, args.loader_workers))

    return _passes(side, one_pass, *random_data(args.images), args), args.images


AVX2_SUFFIX = "+avx2"
# item -> (function, {framework: variants}): the project's paths as they run by default, and with the
# MKL setting of greedyhash_common.infra.cpu_math (+avx2), Paddle's static graph, the Paddle Inference
# predictor, the batched loader. `encode` variants are loader[+network].
MEASUREMENTS = {
    "train": (measure_train, {"torch": ("dynamic", "dynamic+avx2"),
                              "paddle": ("dynamic", "dynamic+avx2", "static+avx2")}),
    "infer": (measure_infer, {"torch": ("dynamic", "dynamic+avx2"),
                              "paddle": ("dynamic", "dynamic+avx2", "static+avx2", "predictor")}),
    "loader": (measure_loader, {"torch": ("reference", "batched"), "paddle": ("reference", "batched")}),
    "network": (measure_network, {"torch": ("dynamic", "dynamic+avx2"),
                                  "paddle": ("dynamic", "dynamic+avx2", "static+avx2", "predictor")}),
    "encode": (measure_encode, {"torch": ("reference", "batched"),
                                "paddle": ("reference", "batched+avx2", "batched+predictor")}),
}


def measure(framework, item, variant, args):
    function, variants = MEASUREMENTS[item]
    if variant not in variants[framework]:
        raise SystemExit(f"{item} has no variant {variant!r} for {framework}; choose from {variants[framework]}")
    if framework == "paddle":
        quiet_paddle_import()
    base_variant = variant.removesuffix(AVX2_SUFFIX)
    side = SIDES[framework](args.threads, args.device, mkl_avx2_on_amd=variant.endswith(AVX2_SUFFIX))
    seconds, items_per_run = function(side, base_variant, args)
    return {"framework": framework, "item": item, "variant": variant, "items_per_run": items_per_run,
            "seconds": seconds, "images_per_second": timing.rates(seconds, items_per_run),
            "peak_rss_mb": timing.peak_rss_mb(),
            "env": side.describe()}


def add_measurement_options(parser):
    """The options benchmarks.bench passes on to every measurement."""
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--bit", type=int, default=DEFAULT_BIT)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="of the train and infer steps")
    parser.add_argument("--image-size", type=int, default=IMAGE_SIZE)
    parser.add_argument("--warm-up", type=int, default=3, help="untimed steps before the timed train/infer steps")
    parser.add_argument("--repeats", type=int, default=7, help="timed train/infer steps")
    parser.add_argument("--images", type=int, default=320, help="images per pass of loader, network, encode")
    parser.add_argument("--eval-batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--loader-workers", type=int, default=0,
                        help="worker processes of the reference loader, threads of the batched one")
    parser.add_argument("--warm-up-passes", type=int, default=1, help="untimed passes over the first two batches")
    parser.add_argument("--passes", type=int, default=3, help="timed passes of loader, network, encode")


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m benchmarks.worker", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("framework", choices=tuple(SIDES))
    parser.add_argument("item", choices=tuple(MEASUREMENTS))
    parser.add_argument("variant")
    parser.add_argument("--output", required=True, help="JSON file to write")
    add_measurement_options(parser)
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    result = measure(args.framework, args.item, args.variant, args)
    write_text(args.output, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
