"""Step-by-step alignment of a Paddle port against its torch reference.

`alignment.align(torch_model, paddle_model)` (alignment.api) aligns any two models in one call, and
`alignment.mutants(...)` (alignment.mutation) measures how much such a pass proves;
`python -m alignment` runs the suite on a model pair (alignment.pairs) or on two factories (--torch,
--paddle). Each framework's side writes its values in reprod_log's format, and `alignment.check`
compares them with per-key tolerances (`alignment.tolerances`).
"""


def align(*args, **options):
    """alignment.api.align: imported when called, so that `python -m alignment.worker torch` never loads paddle."""
    from .api import align as run

    return run(*args, **options)


def mutants(model=None, *, torch=None, paddle=None, workdir=None, **options):
    """The mutation score (alignment.mutation) of a pair: `model` a pair's name (alignment.pairs), or `torch`
    and `paddle` importable model factories ("torchvision.models:resnet18"); `options` any of
    `python -m alignment.mutation`'s, by name (max=20, jobs=2, sizes="64", weight_sets="seeded",
    reference="none"). Returns the summary (mutation.json's content); the report is in `workdir`."""
    from .mutation.run import run

    pair = ["--model", model] if model else ["--torch", torch, "--paddle", paddle]
    argv = [*pair, *(["--workdir", workdir] if workdir else [])]
    for name, value in options.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return run(argv)[0]
