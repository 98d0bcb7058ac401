"""loss: both terms of the GreedyHash objective and their weighted total on a fixed labelled batch."""
from ..cases import SIZE, WEIGHTS

USES = (WEIGHTS, SIZE)


def run(side, context):
    model = side.build_model(context.bit, context.dtype, context.weights)
    logits, h, _ = model(side.tensor(context.batch()))
    total, cross_entropy, quantization = side.loss(logits, h, side.tensor(context.labels))
    return {"loss_total": side.numpy(total), "loss_cross_entropy": side.numpy(cross_entropy),
            "loss_quantization": side.numpy(quantization)}
