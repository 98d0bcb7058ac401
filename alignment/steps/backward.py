"""backward: the gradient of every parameter (by its torch name), of the input and of h.

Dropout is off (eval mode) so that no random mask enters the gradients. The straight-through sign
must pass the gradient unchanged: the cross-entropy term reaches h only through b = sign(h), so its
gradient with respect to h must equal its gradient with respect to b, inside each side.
"""
from ..cases import SIZE, WEIGHTS

USES = (WEIGHTS, SIZE)
INVARIANTS = (("grad_cross_entropy.h", "grad_cross_entropy.b"),)


def run(side, context):
    model = side.build_model(context.bit, context.dtype, context.weights)
    images = side.tensor(context.batch(), requires_grad=True)
    logits, h, b = model(images)
    total, cross_entropy, _ = side.loss(logits, h, side.tensor(context.labels))
    through_sign = side.gradients(cross_entropy, [h, b])
    values = {"grad_cross_entropy.h": through_sign[0], "grad_cross_entropy.b": through_sign[1]}
    values["grad.h"], values["grad.input"] = side.gradients(total, [h, images])
    side.backward(total)
    values.update({"grad." + name: grad for name, grad in side.parameter_gradients(model).items()})
    return values
