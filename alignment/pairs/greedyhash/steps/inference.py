"""inference: the metric step with the encoder each framework deploys, the one its `eval` uses by
default and `predict` and `infer` use: torch's model, and on the Paddle side the Paddle Inference
predictor (paddle_impl.static_model: the model saved as a static program and run with oneDNN's fused
kernels). The predictor takes float32 only. Codes must be identical but for flips where |h| is
within the float32 tolerance of zero."""
from alignment.cases import BULK, WEIGHTS
from ..tolerances import INFERENCE_STEP
from .metric import CODE_KEYS, encoded_values  # noqa: F401 (CODE_KEYS: the checker reads it from this module)

USES = (WEIGHTS, BULK)
DTYPES = ("float32",)
TOLERANCES = INFERENCE_STEP


def run(side, context):
    return encoded_values(side, context, lambda model: side.deployed_encoder(model, context.image_size,
                                                                             context.threads))
