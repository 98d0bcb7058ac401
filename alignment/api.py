"""Align any torch model with its Paddle port in one call, with nothing else written:

    import alignment
    result = alignment.align(torchvision.models.resnet18(num_classes=10),
                             paddle.vision.models.resnet18(num_classes=10))
    result.passed, result.failures()

Both models run in this process, through the suite's own steps (forward in eval and training mode, loss,
backward, optim, train), checker, layer localization, coverage and report (alignment.suite.run), as
`python -m alignment --torch MODULE:FACTORY --paddle MODULE:FACTORY` does. The key map is inferred from
the two trees (alignment.pairs.inferred_layout); the torch model's weights, with its BatchNorm parameters
and statistics drawn (alignment.pairs.base), are copied into the Paddle model through it.
"""
import contextlib
import copy
import dataclasses
import os
import random
import tempfile

import numpy as np

from greedyhash_common.infra.errors import UserInputError

from .pairs.factories import FactoryPair
from .report import closing_line, terminal_summary
from .suite import DTYPES, get_args_parser, remove_weight_sets, run, with_pair_defaults, with_user_weights
from .verdict import all_passed, verdict_table


@dataclasses.dataclass
class Alignment:
    """The verdict of a run: `rows` the StepVerdict of each check (alignment.verdict: step, case, dtype, passed,
    worst key, its differences and limit, the diagnosis), `localizations` {(dtype, case): where the layers
    part}, `coverage_rows` the LayerCoverage of each layer (alignment.coverage), the report in `workdir`."""
    workdir: str
    rows: list
    localizations: dict
    localization_failures: dict
    coverage_rows: list

    @property
    def passed(self):
        return all_passed(self.rows)

    def failures(self):
        return [row for row in self.rows if not row.passed]

    def __str__(self):
        return "\n".join([verdict_table(self.rows, [("step", 10), ("case", 16), ("dtype", 8)]),
                          terminal_summary(self.workdir, self.rows, self.localization_failures, self.coverage_rows),
                          closing_line(self.rows, self.coverage_rows, self.workdir)])


class ModelsPair(FactoryPair):
    """Two model objects (each build is a copy) and, optionally, the batch, the losses and the optimizer's
    coefficients."""

    def __init__(self, torch_model, paddle_model, name, key_map, inputs, labels, losses, optimizer):
        super().__init__(lambda: copy.deepcopy(torch_model), lambda: copy.deepcopy(paddle_model), name, key_map)
        self.inputs, self.labels, self.losses = inputs, labels, losses
        self.OPTIMIZER = {**self.OPTIMIZER, **(optimizer or {})}

    def input_batch(self, data, count, sizes):
        if self.inputs is None:
            return super().input_batch(data, count, sizes)
        if callable(self.inputs):
            return self.inputs(count, sizes)
        images = np.asarray(self.inputs, dtype=np.float64)
        labels = np.arange(len(images), dtype=np.int64) % 10 if self.labels is None else np.asarray(self.labels)
        return {size: images for size in sizes}, labels.astype(np.int64)

    def loss(self, framework):
        return self.losses[framework] if self.losses else super().loss(framework)


def _sizes(inputs, sizes):
    """An array of images has one size, its own."""
    if inputs is None or callable(inputs):
        return sizes
    shape = np.shape(inputs)
    if len(shape) != 4 or shape[2] != shape[3]:
        raise UserInputError(f"inputs of shape {shape}: give square NCHW images, or a factory (count, sizes)")
    return (shape[-1],)


@contextlib.contextmanager
def callers_random_streams_kept():
    """Python's, numpy's, torch's and Paddle's global random streams left as they were: a call runs both sides
    in the caller's process, and the sides seed their framework (and a pair's training loop the host) for
    the run's own randomness; a training script that checks its port between epochs must draw the same
    batches as without the check."""
    import paddle
    import torch

    python, host, paddle_state = random.getstate(), np.random.get_state(), paddle.get_rng_state()
    with torch.random.fork_rng():
        try:
            yield
        finally:
            random.setstate(python)
            np.random.set_state(host)
            paddle.set_rng_state(paddle_state)


def align(torch_model, paddle_model, inputs=None, labels=None, *, key_map=None, sizes=None, dtypes=DTYPES,
          steps=None, workdir=None, weights=None, weight_sets=None, loss=None, optimizer=None, batch_size=None,
          seed=0, threads=1, name="model", profile=False, localize=True, keep_arrays=False):
    """Align `paddle_model` with `torch_model`; return the Alignment.

    inputs: NCHW images (labels: int64 class ids, default cycling 0..9), or a factory (count, sizes) ->
    ({size: images}, labels); None: the first CIFAR-10 images of each class at `sizes` (default 64, 61).
    key_map: {torch key: Paddle key} for what the trees cannot decide. loss: {"torch": f, "paddle": f}
    (default cross-entropy); optimizer: SGD's coefficients (lr, decay_every, momentum, weight_decay).
    workdir: where the values, the localization and the report go (default: a temporary folder, kept, but
    for its weight sets: no later call makes that folder again, so nothing would read them).
    weights: a checkpoint of either framework, checked as one more weight set ("user"); weight_sets: the sets
    to check (default: the seeded one, and "user" when `weights` is given; the seeded set of two given models
    is the torch model's own weights, its BatchNorm parameters and statistics drawn from `seed`: build it
    after torch.manual_seed for a run that repeats; ("user",): the checkpoint alone;
    ("seeded", "rescaled"): the seeded one and its rescaling to a trained network's ranges, alignment.pairs.rescaling).
    profile: localize the first forward case even when it passes; localize=False: no layer localization;
    keep_arrays: keep every array of every step and layer in `workdir`, not only those of the failing keys."""
    pair = ModelsPair(torch_model, paddle_model, name, key_map, inputs, labels, loss, optimizer)
    sizes = _sizes(inputs, sizes)
    options = ["--dtypes", ",".join(dtypes), "--seed", str(seed), "--threads", str(threads),
               "--workdir", workdir or tempfile.mkdtemp(prefix="alignment-"),
               *(["--steps", ",".join(steps)] if steps else []),
               *(["--sizes", ",".join(map(str, sizes))] if sizes else []),
               *(["--weights", weights] if weights else []),
               *(["--weight-sets", ",".join(weight_sets)] if weight_sets else []),
               *(["--batch-size", str(batch_size)] if batch_size else []),
               *([] if profile else ["--no-profile"]), *([] if localize else ["--no-localize"]),
               *(["--keep-arrays"] if keep_arrays else [])]
    args = get_args_parser().parse_args(options)
    args.model, args.in_process, args.bit = name, True, pair.code_length(None)
    args = with_user_weights(with_pair_defaults(args, pair))
    args.bulk_size = min(map(int, args.sizes.split(",")))
    os.makedirs(args.workdir, exist_ok=True)
    with callers_random_streams_kept():
        alignment = Alignment(args.workdir, *run(args, pair))
    if workdir is None and not keep_arrays:
        remove_weight_sets(args.workdir, args.bit, args.weight_sets.split(","))
    return alignment
