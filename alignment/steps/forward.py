"""forward: the model's named outputs in eval mode, and in training mode with the pair's randomness
made the same on both sides (injected dropout masks); after the training-mode pass, the buffers a
training forward updates (BatchNorm's running statistics), by torch name."""
from ..cases import SIZE, WEIGHTS

USES = (WEIGHTS, SIZE)


def named_outputs(pair, result):
    """{output name: tensor} of a model's result (one tensor or a tuple), by the pair's OUTPUTS."""
    result = result if isinstance(result, (tuple, list)) else (result,)
    if len(result) != len(pair.OUTPUTS):
        raise ValueError(f"the model returned {len(result)} outputs, the pair names {len(pair.OUTPUTS)}")
    return dict(zip(pair.OUTPUTS, result))


def _values(side, prefix, outputs):
    return {prefix + name: side.numpy(value) for name, value in outputs.items()}


def run(side, context):
    pair = context.pair
    model = side.build_model(context.bit, context.dtype, context.weights)
    images = side.tensor(context.batch())
    values = _values(side, "", named_outputs(pair, model(images)))
    pair.inject_randomness(side, model, context.mask_seed)
    model.train()
    values.update(_values(side, "train_", named_outputs(pair, model(images))))
    values.update({"train_buffer." + name: value for name, value in side.buffer_values(model).items()})
    return values
