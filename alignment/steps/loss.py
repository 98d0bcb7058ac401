"""loss: every term of the pair's objective and their total on a fixed labelled batch."""
from ..cases import SIZE, WEIGHTS
from .forward import named_outputs

USES = (WEIGHTS, SIZE)


def run(side, context):
    model = side.build_model(context.bit, context.dtype, context.weights)
    outputs = named_outputs(context.pair, model(side.tensor(context.batch())))
    return {key: side.numpy(term) for key, term in
            context.pair.loss_terms(side, outputs, side.tensor(context.labels)).items()}
