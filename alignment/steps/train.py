"""train: iterations side by side in training mode, from the same weights, on the same batches (the
shared batch order) with the same dropout masks (injected), through a learning-rate decay.

Logged per iteration: both loss terms, the total and the learning rate; at the end every parameter
and every momentum buffer, by torch name in torch's layout.
"""
import itertools

import numpy as np

from greedyhash_common.dataset import load_data
from greedyhash_common.dropout_masks import DropoutMaskSchedule
from greedyhash_common.hyperparameters import DROPOUT_P, SEED

from .optimizer_coefficients import FLOAT32_EXACT_COEFFICIENTS

EPOCHS = 4
ITERATIONS_PER_EPOCH = 5  # 20 iterations in all
DECAY_EVERY_EPOCHS = 2  # a short schedule, so the run crosses a decay (after iteration 10)
BATCH_SIZE = 8
LOSS_KEYS = ("loss_total", "loss_cross_entropy", "loss_quantization")


def run(side, context):
    model = side.build_model(context.bit, context.dtype, context.weights)
    side.inject_masks(model, DropoutMaskSchedule(context.mask_seed, DROPOUT_P))
    model.train()
    optimizer, scheduler = side.optimizer_builder(model, decay_every=DECAY_EVERY_EPOCHS,
                                                       **FLOAT32_EXACT_COEFFICIENTS)
    prepared = load_data(context.data, context.split_file)
    loader = side.data.train_loader(*prepared.subset("train"), BATCH_SIZE, SEED, size=context.bulk_image_size)
    records = {key: [] for key in (*LOSS_KEYS, "lr")}
    for epoch in range(EPOCHS):
        loader.batch_sampler.set_epoch(epoch)
        for images, labels in itertools.islice(loader, ITERATIONS_PER_EPOCH):
            records["lr"].append(side.learning_rate(optimizer, scheduler))
            terms = side.train_step(model, optimizer, side.cast(images, context.dtype), labels)
            for key, term in zip(LOSS_KEYS, terms):
                records[key].append(float(side.numpy(term)))
        scheduler.step()
    values = {key: np.array(series, dtype=np.float64) for key, series in records.items()}
    values.update({"param." + name: value for name, value in side.parameter_values(model).items()})
    values.update({"momentum." + name: value for name, value in side.momentum_buffers(model, optimizer).items()})
    return values
