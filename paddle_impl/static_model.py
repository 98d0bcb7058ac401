"""GreedyHash through Paddle's static graph: for training (`to_static`) and for encoding (`InferenceEncoder`).

`to_static(model)` converts the model's forward with paddle.jit.to_static (whole graph): the same layer
object and parameters (an optimizer built on `model.parameters()` keeps working); forward and backward
run as one compiled program per input shape. Convert a model in training mode: a program made in eval
mode has no backward (its parameters get no gradient). Its speed against the dynamic graph is measured
by benchmarks/ (docs/performance.md, Benchmarks), and with FLAGS_use_mkldnn or FLAGS_use_onednn set,
Paddle 3.3.1 crashes (segmentation fault) running the converted model.

`save_inference_program(model, prefix, image_size)` saves the model's eval-mode forward (logits, h,
codes) as a static inference program (paddle.jit.save): paddle_impl.export writes it, and
`InferenceEncoder` writes it to a temporary folder. `Predictor(create_predictor(prefix, threads))` runs
such a program in the Paddle Inference predictor, configured once here (on the CPU with oneDNN kernels:
convolution with its bias and ReLU fused, which the dynamic graph does not use; speed:
docs/performance.md, Benchmarks): what paddle_impl.eval encodes with by default, what paddle_impl.infer
runs, and what the alignment suite's `inference` step checks against torch. `encode(loader)` returns
what paddle_impl.eval.encode returns. An InferenceEncoder holds a copy of the weights taken when it was
made: make a new one after training has changed them. Its float32 values differ from the dynamic graph's
by rounding (oneDNN's summation order), so a code whose |h| is within that of zero can flip sign:
compare codes with the suite's codes rule (alignment.check.compare_codes), not for equality.
"""
import os
import tempfile

import numpy as np
import paddle
from paddle import inference

PROGRAM_PREFIX = "greedyhash"
PROGRAM_SUFFIXES = (".json", ".pdmodel")  # Paddle 3 (PIR) writes .json, Paddle 2.x .pdmodel
PARAMETERS_SUFFIX = ".pdiparams"
INPUT_NAME = "images"
OUTPUT_NAMES = ("logits", "h", "codes")
GPU_MEMORY_POOL_MB = 256


def to_static(model):
    """`model` with its forward compiled to a static program (converted in place, and returned)."""
    return paddle.jit.to_static(model, full_graph=True)


def save_inference_program(model, prefix, image_size):
    """jit.save `model`'s eval-mode forward for float32 input (N, 3, image_size, image_size) at `prefix`."""
    was_training = model.training
    model.eval()
    spec = paddle.static.InputSpec([None, 3, image_size, image_size], "float32", INPUT_NAME)
    paddle.jit.save(model, prefix, input_spec=[spec])
    if was_training:
        model.train()


def program_path(prefix):
    """The program file saved at `prefix`, or None."""
    return next((prefix + suffix for suffix in PROGRAM_SUFFIXES if os.path.isfile(prefix + suffix)), None)


def create_predictor(prefix, threads, device="cpu"):
    """A Paddle Inference predictor of the program saved at `prefix` (raises Paddle's errors on bad files)."""
    config = inference.Config(program_path(prefix), prefix + PARAMETERS_SUFFIX)
    if device == "gpu":
        config.enable_use_gpu(GPU_MEMORY_POOL_MB, 0)
    else:
        config.disable_gpu()
        config.enable_mkldnn()  # the default on Paddle 3's CPU build; explicit for 2.6
        config.set_cpu_math_library_num_threads(threads)
    config.disable_glog_info()
    return inference.create_predictor(config)


class Predictor:
    """The model's eval-mode forward (logits, h, codes) in a Paddle Inference predictor."""

    def __init__(self, predictor):
        self.predictor = predictor
        self.input = predictor.get_input_handle(predictor.get_input_names()[0])
        self.output_names = predictor.get_output_names()

    def __call__(self, images):
        """(logits, h, codes) as numpy arrays, for float32 images (N, 3, S, S) (numpy or Paddle tensor)."""
        images = np.ascontiguousarray(images.numpy() if isinstance(images, paddle.Tensor) else images,
                                      dtype=np.float32)
        self.input.reshape(list(images.shape))
        self.input.copy_from_cpu(images)
        self.predictor.run()
        return tuple(self.predictor.get_output_handle(name).copy_to_cpu() for name in self.output_names)

    def encode(self, loader):
        """(codes, h, logits, labels) of every image of `loader`, in its order: paddle_impl.eval.encode's."""
        outputs = {"codes": [], "h": [], "logits": [], "labels": []}
        for images, labels in loader:
            logits, h, codes = self(images)
            for name, value in (("codes", codes), ("h", h), ("logits", logits),
                                ("labels", labels.numpy() if isinstance(labels, paddle.Tensor) else labels)):
                outputs[name].append(np.asarray(value))
        return tuple(np.concatenate(outputs[name]) for name in ("codes", "h", "logits", "labels"))


class InferenceEncoder(Predictor):
    """A Predictor of `model` as it is now, saved to a temporary folder."""

    def __init__(self, model, image_size, threads, device="cpu"):
        with tempfile.TemporaryDirectory(prefix="greedyhash-static-") as folder:
            prefix = os.path.join(folder, PROGRAM_PREFIX)
            save_inference_program(model, prefix, image_size)
            super().__init__(create_predictor(prefix, threads, device))  # reads the files now: the folder may go
