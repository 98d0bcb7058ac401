"""The GreedyHash pair, the suite's default: torch_impl's model against paddle_impl's port (this
project's own), with its product's data loaders, training loop, evaluation and deployed encoder.

Beside this file: its sides (torch_side.py, paddle_side.py), its weight sets (weight_sets.py,
weight_makers.py), its tolerances (tolerances.py), its own steps (steps/), the seams of its mutation
operators (mutant_seams.py) and its loss curves (curve.py, curve_worker.py). What is its own and no other pair's: the
outputs (logits, the continuous code h, the sign code b), the objective (cross-entropy on the codes
plus the cubic quantization term), the straight-through sign (an invariant of the backward step), the
dropout masks injected for training mode, the weight sets rescaled on AlexNet's layers, the data,
metric and inference steps, and the tolerances of AlexNet's layers below its first max-pool.
"""
import importlib
import os

import numpy as np

from greedyhash_common.app.cli_options import DEFAULT_BIT
from greedyhash_common.app.option_checks import SMALLEST_IMAGE_SIZE, check_image_size
from greedyhash_common.app.training import global_batch_sizes
from greedyhash_common.data.dataset import load_data, write_split
from greedyhash_common.hyperparameters import (BITS, EPOCHS, DROPOUT_P, LEARNING_RATE,
                                               LR_DECAY_EVERY_EPOCHS, MOMENTUM, QUANTIZATION_WEIGHT, SEED,
                                               WEIGHT_DECAY, learning_rate_at)
from greedyhash_common.infra.errors import UserInputError
from greedyhash_common.project import PROJECT_ROOT

from ...paths import split_path
from ...weight_sets import RESCALED, SEEDED
from ..base import ModelPair
from .steps import data, inference, metric
from . import weight_sets
from .tolerances import BELOW_FIRST_MAXPOOL
from .weight_sets import RESCALING_IMAGE_SIZE

# the train step: epochs over the first training images through the product's loop, across a decay
TRAIN_EPOCHS = 4
TRAIN_BATCH_SIZE = 8
TRAIN_ITERATIONS_PER_EPOCH = 5
TRAIN_DECAY_EVERY_EPOCHS = 2
LOSS_KEYS = ("loss_total", "loss_cross_entropy", "loss_quantization")


class GreedyHashPair(ModelPair):
    NAME = "greedyhash"
    STEPS = ("data", "forward", "loss", "backward", "optim", "train", "metric", "inference")
    OWN_STEPS = {"data": data, "metric": metric, "inference": inference}  # the others: alignment.steps
    OUTPUTS = ("logits", "h", "b")
    WEIGHT_SETS = (SEEDED, RESCALED)  # weight_sets.py
    WEIGHTS_MADE_ON = {RESCALED: RESCALING_IMAGE_SIZE}  # the rescaled set is made on the batch at 224 px
    # 224, the reference's input, and 222, where every layer computes a non-trivial function: at 224 the last
    # feature map is 6x6 and at 64 it is 1x1, so the adaptive average pool is an identity or a copy, and any
    # pooling a port puts there agrees; at 222 it pools a 5x5 map into 6x6 through overlapping windows of
    # two. And at 224 (or 256, 64) every max-pool's windows tile its input exactly, so a max-pool with
    # ceil_mode agrees; at 222 each of the three ends in a window cut by the border. (Sizes that do all of
    # this: 219-222, 283-286, ...; 222 is the cheapest above 200.)
    DEFAULT_SIZES = (224, 222)
    # Beside the rescaled set, the seeded one adds nothing at the sizes after the first: the size changes
    # only AlexNet's adaptive pool's input, which the rescaled set exercises over a wider range.
    FIRST_SIZE_ONLY = (SEEDED,)
    BITS = BITS
    CODE_OUTPUTS = {"b": "h"}
    CODE_LAYER = "fc_plus"  # the hash layer: its output is h, b = sign(h) (alignment.coverage)
    CODE_BREAKPOINT = 1.0  # the quantization term | |h| - 1 |^3 (torch_impl/loss.py) changes branch at |h| = 1
    BACKWARD_MODES = ("eval",)  # dropout is off, so no random mask enters the gradients
    INVARIANTS = {"backward": (("grad_cross_entropy.h", "grad_cross_entropy.b"),)}
    TOLERANCES = BELOW_FIRST_MAXPOOL
    # The rescaled network's gradients are hundreds of times the seeded one's (weight_sets.py): a float32
    # decision flip (a max-pool's maximum, a ReLU's sign) in one update is carried by the next ones until the
    # losses part by far more than rounding while float64 agrees near-exactly (measured: docs/alignment.md,
    # Weight sets and sizes). There only float64 separates a defect from rounding; float32 training is
    # checked at the seeded weights.
    FLOAT64_ONLY_TRAIN_WEIGHT_SETS = (RESCALED,)
    OPTIMIZER = {"lr": LEARNING_RATE, "decay_every": LR_DECAY_EVERY_EPOCHS, "momentum": MOMENTUM,
                 "weight_decay": WEIGHT_DECAY}
    DROPOUT_MASK_P = DROPOUT_P
    SMALLEST_IMAGE_SIZE = SMALLEST_IMAGE_SIZE  # AlexNet's
    EPOCHS = EPOCHS

    def build(self, framework):
        """The untrained model of torch_impl or paddle_impl at the default code length (the sides build it at the
        run's: torch_side.py, paddle_side.py)."""
        return importlib.import_module(f"{framework}_impl.model").GreedyHash(DEFAULT_BIT)

    def code_length(self, bit):
        if bit is None:
            return DEFAULT_BIT
        if bit not in BITS or isinstance(bit, bool):
            raise UserInputError(f"--bit {bit}: the code length must be one of {', '.join(map(str, BITS))}")
        return bit

    def check_image_size(self, size, option):
        return check_image_size(size, option)

    def write_own_inputs(self, data, workdir):
        """The CIFAR-10 split the data, train, metric and inference steps read (built-in synthetic data by
        default)."""
        write_split(data, split_path(workdir))

    def learning_rate_at(self, epoch):
        return learning_rate_at(epoch)

    def train_learning_rate(self, weight_set):
        return weight_sets.train_learning_rate(weight_set)

    def side(self, framework):
        return importlib.import_module(f"alignment.pairs.greedyhash.{framework}_side")

    def loss_terms(self, side, outputs, labels):
        return dict(zip(LOSS_KEYS, side.loss(outputs["logits"], outputs["h"], labels)))

    def backward_extras(self, side, outputs, terms):
        """The straight-through sign: the cross-entropy reaches h only through b = sign(h), so its gradient
        with respect to h must equal its gradient with respect to b (INVARIANTS); and the gradient of h."""
        through_sign = side.gradients(terms["loss_cross_entropy"], [outputs["h"], outputs["b"]])
        (grad_h,) = side.gradients(terms["loss_total"], [outputs["h"]])
        return {"grad_cross_entropy.h": through_sign[0], "grad_cross_entropy.b": through_sign[1], "grad.h": grad_h}

    def train_values(self, side, context):
        """Epochs side by side through the product's own training loop (`train_one_epoch` of torch_impl.train
        and paddle_impl.train) on the first training images, with the same dropout masks, across a decay, and
        an evaluation between epochs (the product's `encode`, on the epoch's first batch), as the product runs
        them: `encode` leaves the model in eval mode, so a loop that does not set training mode itself trains
        the later epochs without dropout, and fails here as it would in the product."""
        from ...steps.optimizer_coefficients import float32_exact_coefficients

        model = side.build_model(context.bit, context.dtype, context.weights)
        self.inject_randomness(side, model, context.mask_seed)
        optimizer, scheduler = side.optimizer_builder(model, lr=context.learning_rate,
                                                      decay_every=TRAIN_DECAY_EVERY_EPOCHS,
                                                      **float32_exact_coefficients(self.OPTIMIZER))
        images, labels = (array[:TRAIN_BATCH_SIZE * TRAIN_ITERATIONS_PER_EPOCH]
                          for array in load_data(context.data, context.split_file).subset("train"))
        loader = side.fast_data.train_loader(images, labels, TRAIN_BATCH_SIZE, SEED, context.image_size)
        evaluated = side.fast_data.eval_loader(images[:TRAIN_BATCH_SIZE], labels[:TRAIN_BATCH_SIZE], TRAIN_BATCH_SIZE,
                                               context.image_size)
        records = {key: [] for key in (*LOSS_KEYS, "lr")}
        for epoch in range(TRAIN_EPOCHS):
            loader.batch_sampler.set_epoch(epoch)
            records["lr"] += [side.learning_rate(optimizer, scheduler)] * TRAIN_ITERATIONS_PER_EPOCH
            step_terms = []
            side.train_one_epoch(model, optimizer, loader, epoch,
                                 global_batch_sizes(len(images), TRAIN_BATCH_SIZE, SEED, epoch), QUANTIZATION_WEIGHT,
                                 step_terms=step_terms)
            for terms in step_terms:
                for key, term in zip(LOSS_KEYS, terms):
                    records[key].append(term)
            scheduler.step()
            side.evaluation.encode(model, evaluated)
        values = {key: np.array(series, dtype=np.float64) for key, series in records.items()}
        # imported here: the weight makers import this module, and the weight sets' cache key covers only the
        # code that makes them (alignment.prepare_weights.MAKING_CODE)
        from ...steps.train import training_state

        values.update(training_state(side, model, optimizer, buffers=False, last=True))
        return values

    def mutant_seams(self):
        from .mutant_seams import GreedyHashSeams

        return GreedyHashSeams()

    def mutation_score(self, workdir):
        """(score line, its report file) of the mutation run in `workdir` (make align-mutants), else of the
        committed one (logs/reference/mutants/); None when neither has run."""
        from ...mutation.files import REPORT_MD, SUMMARY_JSON
        from ...mutation.score import reference_score_line, reference_summary

        for summary in (os.path.join(workdir, "mutants", SUMMARY_JSON),
                        os.path.join(PROJECT_ROOT, reference_summary(self.NAME))):
            line = reference_score_line(summary)
            if line:
                return line, os.path.join(os.path.dirname(summary), REPORT_MD)
        return None

    def make_weight_set(self, bit, seed, workdir, weight_set, source=None):
        """(torch process) Write one weight set in both layouts (alignment.pairs.greedyhash.weight_makers)."""
        from .weight_makers import make_weight_set as make  # torch, imported in the torch process only

        make(bit, seed, workdir, weight_set, source)

    def convert_weight_set(self, bit, workdir, weight_set):
        """(torch process) The .pdparams of one weight set, converted from its .pth (weight_makers)."""
        from .weight_makers import convert_weight_set as convert

        convert(bit, workdir, weight_set)

    def layout(self, state=None, framework=None):
        """A GreedyHash checkpoint's Layout, or the ImageNet AlexNet backbone's, by what the file holds."""
        from greedyhash_common.state_dicts.layout import detect_layout

        return detect_layout(state, framework)

    def key_map(self):
        """{torch key: Paddle key} of every parameter (greedyhash_common.state_dicts.key_map)."""
        from greedyhash_common.state_dicts.key_map import GREEDYHASH_KEY_MAP

        return GREEDYHASH_KEY_MAP


GREEDYHASH = GreedyHashPair()
