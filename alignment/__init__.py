"""Step-by-step alignment of a Paddle port against its torch reference.

`alignment.align(torch_model, paddle_model)` (alignment.api) aligns any two models in one call;
`python -m alignment` runs the suite on a model pair (alignment.pairs) or on two factories (--torch,
--paddle). Each framework's side writes its values in reprod_log's format, and `alignment.check`
compares them with per-key tolerances (`alignment.tolerances`).
"""


def align(*args, **options):
    """alignment.api.align: imported when called, so that `python -m alignment.side torch` never loads paddle."""
    from .api import align as run

    return run(*args, **options)
