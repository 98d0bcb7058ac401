"""Layer-by-layer localization: the layer where the Paddle port starts to differ from the reference.

`python -m alignment.layers` (make align-layers) runs it on its own; `python -m alignment` runs it
when the forward or backward step fails. `side` records one framework's layers in its own process,
`localize` pairs the two records, compares them and finds the first diverging layer.
"""
