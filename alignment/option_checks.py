"""Checks of the suite's options (python -m alignment, python -m alignment.layers), run before any work:
what the model pair accepts (its image sizes and code length: alignment.pairs.base) and what every run
needs (counts, the work folder, the two interpreters, the user's checkpoint). The checks shared with the
products are greedyhash_common.app.option_checks."""
from greedyhash_common.app.option_checks import check_interpreter, check_output_dir, check_weights_file
from greedyhash_common.infra.errors import UserInputError


def image_sizes(text, option, pair):
    """The sizes of a comma-separated list ("224,222"), each checked by the pair."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        message = f"{option} {text}: give image sizes in pixels, comma-separated (such as 224,222)"
        raise UserInputError(message) from None
    return [pair.check_image_size(size, option) for size in sizes]


def check_positive(value, option):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UserInputError(f"{option} {value}: must be a positive integer")
    return value


def check_run_options(args, pair):
    """The options of the suite and its layer localization (alignment.suite.add_run_options) for `pair`;
    `args.bit` becomes the pair's code length (ModelPair.code_length: none for a pair without one)."""
    args.bit = pair.code_length(args.bit)
    image_sizes(args.sizes, "--sizes", pair)
    pair.check_image_size(args.bulk_size, "--bulk-size")
    check_positive(args.batch_size, "--batch-size")
    check_positive(args.threads, "--threads")
    if args.seed < 0:
        raise UserInputError(f"--seed {args.seed}: must be a non-negative integer")
    check_output_dir(args.workdir, "--workdir")
    check_interpreter(args.torch_python, "--torch-python")
    check_interpreter(args.paddle_python, "--paddle-python")
    if args.weights is not None:
        check_weights_file(args.weights)
