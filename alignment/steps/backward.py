"""backward: the gradient of every parameter (by its torch name) and of the input, in eval mode and, for
a pair that asks (BACKWARD_MODES), in training mode too (BatchNorm with batch statistics: keys
prefixed train_), with the pair's own keys (GreedyHash: the straight-through sign).

A pair with dropout runs it in eval mode only, so that no random mask enters the gradients."""
from ..cases import SIZE, WEIGHTS
from .forward import named_outputs

USES = (WEIGHTS, SIZE)


def _gradients(side, pair, model, context, prefix):
    images = side.tensor(context.batch(), requires_grad=True)
    outputs = named_outputs(pair, model(images))
    terms = pair.loss_terms(side, outputs, side.tensor(context.labels))
    values = dict(pair.backward_extras(side, outputs, terms))
    side.backward(terms["loss_total"])
    values["grad.input"] = side.gradient_of(images)
    values.update({"grad." + name: grad for name, grad in side.parameter_gradients(model).items()})
    return {prefix + key: value for key, value in values.items()}


def run(side, context):
    pair = context.pair
    values = {}
    for mode in pair.BACKWARD_MODES:
        model = side.build_model(context.bit, context.dtype, context.weights)
        if mode == "train":
            pair.inject_randomness(side, model, context.mask_seed)
            model.train()
        values.update(_gradients(side, pair, model, context, "" if mode == "eval" else "train_"))
    return values
