"""data: the first batches of each framework's loaders (images and labels), built from one split file.

The training loader is read in two epochs, so the shared per-epoch order is checked too; the query
and database loaders give their first batch. Loaders produce float32 images whatever the model's
precision, so the step runs once, in float32.
"""
from greedyhash_common.dataset import load_data
from greedyhash_common.hyperparameters import BATCH_SIZE, SEED

DTYPES = ("float32",)
EPOCHS = (0, 1)
BATCHES_PER_EPOCH = 2


def _batch_values(side, name, batch):
    images, labels = side.data.to_numpy_batch(batch)
    return {f"{name}.images": images, f"{name}.labels": labels}


def run(side, context):
    prepared = load_data(context.data, context.split_file)
    values = {}
    loader = side.data.train_loader(*prepared.subset("train"), BATCH_SIZE, SEED, size=context.image_size)
    for epoch in EPOCHS:
        loader.batch_sampler.set_epoch(epoch)
        for number, batch in zip(range(BATCHES_PER_EPOCH), loader):
            values.update(_batch_values(side, f"train.epoch{epoch}.batch{number}", batch))
    for part in ("query", "database"):
        first = next(iter(side.data.eval_loader(*prepared.subset(part), BATCH_SIZE, size=context.image_size)))
        values.update(_batch_values(side, f"{part}.batch0", first))
    return values
