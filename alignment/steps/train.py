"""train: epochs side by side in training mode through the product's own training loop
(`train_one_epoch` of torch_impl.train and paddle_impl.train), from the same weights, on the same
batches of the loaders training reads through (the shared batch order, over a small subset of the
training set), with the same dropout masks (injected), through a learning-rate decay.

Logged per iteration: both loss terms, the total and the learning rate; at the end every parameter
and every momentum buffer, by torch name in torch's layout.
"""
import numpy as np

from greedyhash_common.app.training import global_batch_sizes
from greedyhash_common.data.dataset import load_data
from greedyhash_common.hyperparameters import DROPOUT_P, QUANTIZATION_WEIGHT, SEED

from ..cases import BULK, WEIGHTS
from ..dropout_masks import DropoutMaskSchedule
from ..weight_sets import RESCALED
from .optimizer_coefficients import FLOAT32_EXACT_COEFFICIENTS

USES = (WEIGHTS, BULK)
# The rescaled network's gradients are hundreds of times the seeded one's (alignment.weight_sets): a
# float32 decision flip (a max-pool's maximum, a ReLU's sign) in one update is carried by the next
# ones until the losses part by far more than rounding while float64 agrees near-exactly (measured:
# docs/alignment.md, Weight sets and sizes). There only float64 separates a defect from rounding;
# float32 training is checked at the seeded weights.
FLOAT64_ONLY_WEIGHT_SETS = (RESCALED,)
EPOCHS = 4
BATCH_SIZE = 8
ITERATIONS_PER_EPOCH = 5  # an epoch over the first 40 training images: 20 iterations in all
DECAY_EVERY_EPOCHS = 2  # a short schedule, so the run crosses a decay (after iteration 10)
LOSS_KEYS = ("loss_total", "loss_cross_entropy", "loss_quantization")


def run(side, context):
    model = side.build_model(context.bit, context.dtype, context.weights)
    side.inject_masks(model, DropoutMaskSchedule(context.mask_seed, DROPOUT_P))
    optimizer, scheduler = side.optimizer_builder(model, lr=context.learning_rate, decay_every=DECAY_EVERY_EPOCHS,
                                                  **FLOAT32_EXACT_COEFFICIENTS)
    images, labels = (array[:BATCH_SIZE * ITERATIONS_PER_EPOCH]
                      for array in load_data(context.data, context.split_file).subset("train"))
    loader = side.fast_data.train_loader(images, labels, BATCH_SIZE, SEED, context.image_size)
    records = {key: [] for key in (*LOSS_KEYS, "lr")}
    for epoch in range(EPOCHS):
        loader.batch_sampler.set_epoch(epoch)
        records["lr"] += [side.learning_rate(optimizer, scheduler)] * ITERATIONS_PER_EPOCH
        step_terms = []
        side.train_one_epoch(model, optimizer, loader, epoch, global_batch_sizes(len(images), BATCH_SIZE, SEED, epoch),
                             QUANTIZATION_WEIGHT, step_terms=step_terms)
        for terms in step_terms:
            for key, term in zip(LOSS_KEYS, terms):
                records[key].append(term)
        scheduler.step()
    values = {key: np.array(series, dtype=np.float64) for key, series in records.items()}
    values.update({"param." + name: value for name, value in side.parameter_values(model).items()})
    values.update({"momentum." + name: value for name, value in side.momentum_buffers(model, optimizer).items()})
    return values
