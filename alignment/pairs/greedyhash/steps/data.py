"""data: the first batches of the loaders training and evaluation read through (each side's fast_data,
in worker threads as training runs them), images and labels, built from one split file; inside each
side, the same batches of the reference loaders (the references' per-image transforms) must be equal
to them to the bit.

The training loader is read in two epochs, so the shared per-epoch order is checked too; the query
and database loaders give their first batch. Loaders produce float32 images whatever the model's
precision, so the step runs once, in float32.
"""
from greedyhash_common.data.dataset import load_data
from greedyhash_common.hyperparameters import BATCH_SIZE, SEED

from alignment.cases import SIZE
from ..tolerances import DATA_STEP

USES = (SIZE,)
DTYPES = ("float32",)
TOLERANCES = DATA_STEP
EPOCHS = (0, 1)
BATCHES_PER_EPOCH = 2
LOADER_THREADS = 2  # more than one, so the threads' hand-over in order is exercised
REFERENCE_PREFIX = "reference_loader."
BATCH_NAMES = ([f"train.epoch{epoch}.batch{number}" for epoch in EPOCHS for number in range(BATCHES_PER_EPOCH)]
               + [f"{part}.batch0" for part in ("query", "database")])
INVARIANTS = tuple((f"{name}.{field}", f"{REFERENCE_PREFIX}{name}.{field}") for name in BATCH_NAMES
                   for field in ("images", "labels"))


def _batch_values(side, name, batch):
    images, labels = side.data.to_numpy_batch(batch)
    return {f"{name}.images": images, f"{name}.labels": labels}


def _first_batches(side, loaders, prepared, size, prefix="", **threads):
    values = {}
    loader = loaders.train_loader(*prepared.subset("train"), BATCH_SIZE, SEED, size, **threads)
    for epoch in EPOCHS:
        loader.batch_sampler.set_epoch(epoch)
        for number, batch in zip(range(BATCHES_PER_EPOCH), loader):
            values.update(_batch_values(side, f"{prefix}train.epoch{epoch}.batch{number}", batch))
    for part in ("query", "database"):
        first = next(iter(loaders.eval_loader(*prepared.subset(part), BATCH_SIZE, size, **threads)))
        values.update(_batch_values(side, f"{prefix}{part}.batch0", first))
    return values


def run(side, context):
    prepared = load_data(context.data, context.split_file)
    return {**_first_batches(side, side.fast_data, prepared, context.image_size, workers=LOADER_THREADS),
            **_first_batches(side, side.data, prepared, context.image_size, REFERENCE_PREFIX)}
