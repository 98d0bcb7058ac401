"""The optimizer coefficients both sides use in the optim and train steps.

Paddle's Momentum keeps `momentum` and `weight_decay` in float32 even for float64 parameters (the
measurement: docs/tolerances.md, Optimizer coefficients). That is a relative 2.6e-8 and 4.7e-8 change
of the coefficients (float32's rounding of 0.9 and 5e-4), invisible in a float32 training, but it caps
a float64 comparison far above float64's rounding.
Both sides therefore get the float32 values of the pair's coefficients: for Paddle nothing changes,
and the float64 run stays near-exact, so it still separates a defect from rounding.
`tests/test_alignment_training.py` measures the difference with the reference's own values.
"""
import numpy as np


def float32_exact_coefficients(optimizer):
    """{momentum, weight_decay} of a pair's OPTIMIZER, each rounded to float32."""
    return {name: float(np.float32(optimizer[name])) for name in ("momentum", "weight_decay")}
