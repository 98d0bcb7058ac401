"""forward: the model's outputs in eval mode, and in training mode with injected dropout masks."""
from greedyhash_common.hyperparameters import DROPOUT_P

from ..cases import SIZE, WEIGHTS
from ..dropout_masks import DropoutMaskSchedule

USES = (WEIGHTS, SIZE)

CODE_KEYS = {"b": "h", "train_b": "train_h"}


def _outputs(side, prefix, outputs):
    return {prefix + name: side.numpy(value) for name, value in zip(("logits", "h", "b"), outputs)}


def run(side, context):
    model = side.build_model(context.bit, context.dtype, context.weights)
    images = side.tensor(context.batch())
    values = _outputs(side, "", model(images))
    side.inject_masks(model, DropoutMaskSchedule(context.mask_seed, DROPOUT_P))
    model.train()
    values.update(_outputs(side, "train_", model(images)))
    return values
