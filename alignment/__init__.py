"""Step-by-step alignment of the Paddle port against the torch reference.

Each framework runs in its own process (`alignment.side`), writes its values in reprod_log's format,
and `alignment.check` compares the two files with per-key tolerances (`alignment.tolerances`).
`python -m alignment` runs the whole suite.
"""
