"""Write the weight sets both sides of a run start from: each a .pth and its conversion to .pdparams.

  python -m alignment.prepare_weights --bit 48 --seed 0 --workdir logs [--weight-sets seeded,rescaled]
                                      [--weights FILE]

The sets are the pair's (its WEIGHT_SETS; alignment.weight_sets names those every pair has: the seeded
initialization and the user's checkpoint, --weights), each made by the pair's `make_weight_set` in the
torch side's interpreter (GreedyHash's, with its `rescaled` set: alignment.pairs.greedyhash.weight_makers;
the converter needs no paddle).

A set is made again only when what it follows from has changed (greedyhash_common.infra.content_cache):
the code that makes and converts it, the torch and torchvision versions, the bit length and seed, the
batch it is rescaled on and the threads that rescale it, the user's file, and the models of a pair that
are not this project's (ModelPair.weights_made_from: the factories', or those alignment.align is
given). Otherwise its files are reused and torch is not even imported (a pair of this project's); a set
whose .pdparams alone is missing (a run of every step removes it when it ends:
alignment.suite.remove_conversions) is converted again from its .pth.
"""
import argparse
import importlib.metadata
import os

from greedyhash_common.app.option_checks import check_not_an_input
from greedyhash_common.infra.content_cache import file_digest, is_fresh, key_of, source_digest, write_stamp
from greedyhash_common.infra.errors import OneLineArgumentParser, UserInputError, exits_cleanly_on_bad_input
from greedyhash_common.project import PROJECT_ROOT

from .pairs import pair_named
from .paths import LAYOUTS, images_path, weight_set_files, weights_stamp_path
from .weight_sets import USER

# Everything the weight files follow from in this project's code: the models, the converter and the file
# formats, the rescaling (kept over-inclusive: an edit elsewhere in them only costs one remaking)
MAKING_CODE = ("torch_impl", "models", "weights_convert", "greedyhash_common", "alignment/__init__.py",
               "alignment/cases.py", "alignment/paths.py", "alignment/prepare_weights.py", "alignment/weight_sets.py",
               "alignment/pairs", "alignment/tolerances.py", "alignment/dropout_masks.py")


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m alignment.prepare_weights", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bit", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0, help="seed of the initialization when no --weights")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--weight-sets", help="comma-separated; default: the pair's")
    parser.add_argument("--weights", help="a checkpoint of the pair (.pth or .pdparams): the user set")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", required=True, help="the model pair (alignment.pairs.pair_named)")
    return parser


def shared_key_parts(bit, seed, pair):
    """What the key of every weight set of the model pair `pair` holds: taken once for all the sets (the
    project's code is hashed, a user's model built and drawn)."""
    return {"bit": bit, "code": source_digest(PROJECT_ROOT, MAKING_CODE), "pair": pair.NAME,
            "models": pair.weights_made_from(seed),
            "versions": {package: importlib.metadata.version(package) for package in ("torch", "torchvision")}}


def weight_set_key(shared, seed, workdir, weight_set, source=None, threads=1, *, pair):
    """The content key of one weight set of the model pair `pair` (greedyhash_common.infra.content_cache), from
    the pair's shared_key_parts."""
    parts = {**shared, "weight_set": weight_set}
    if weight_set == USER:
        parts["source"] = [os.path.splitext(source)[1], file_digest(source)]
    else:
        parts["seed"] = seed
    made_on = pair.WEIGHTS_MADE_ON.get(weight_set)
    if made_on:
        parts["batch"] = file_digest(images_path(workdir, made_on))
        parts["threads"] = threads  # the set's sums over the batch, in the order its threads add them
    return key_of(parts)


def prepare_weights(bit, seed, workdir, weight_sets, source=None, threads=1, *, pair):
    """Write every weight set of `weight_sets` of the model pair `pair` in both layouts, unless made earlier
    from the same content; the user set is `source`. A set whose .pth is fresh but whose .pdparams is not (a
    run removes its conversions when it ends) is converted from the .pth, not made again. Return the sets
    made or converted."""
    made, shared = [], shared_key_parts(bit, seed, pair)
    for weight_set in weight_sets:
        key = weight_set_key(shared, seed, workdir, weight_set, source, threads, pair=pair)
        files = dict(zip(LAYOUTS, weight_set_files(workdir, bit, weight_set)))
        fresh = [suffix for suffix, path in files.items()
                 if is_fresh(weights_stamp_path(workdir, bit, weight_set, suffix), key, [path])]
        if fresh == list(LAYOUTS):
            continue
        from torch_impl import runtime  # torch, imported only when a set is made

        runtime.configure(threads)
        if fresh == [".pth"]:
            pair.convert_weight_set(bit, workdir, weight_set)
        else:
            pair.make_weight_set(bit, seed, workdir, weight_set, source)
            write_stamp(weights_stamp_path(workdir, bit, weight_set), key, [files[".pth"]])
        write_stamp(weights_stamp_path(workdir, bit, weight_set, ".pdparams"), key, [files[".pdparams"]])
        made.append(weight_set)
    return made


@exits_cleanly_on_bad_input
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    pair = pair_named(args.model, args.workdir)
    weight_sets = args.weight_sets.split(",") if args.weight_sets else list(pair.WEIGHT_SETS)
    unknown = set(weight_sets) - set(pair.weight_set_names())
    if unknown or (USER in weight_sets) != bool(args.weights):
        choices = [name for name in pair.weight_set_names() if name != USER]
        raise UserInputError(f"--weight-sets {','.join(weight_sets)}: choose from {', '.join(choices)},"
                             f" and {USER} exactly when --weights is given")
    if args.weights and not os.path.isfile(args.weights):
        raise UserInputError(f"{args.weights}: no such file")
    for path in weight_set_files(args.workdir, args.bit, USER):  # both layouts, never over the user's source
        check_not_an_input(path, "the user set's file", args.weights)
    made = prepare_weights(args.bit, args.seed, args.workdir, weight_sets, args.weights, args.threads, pair=pair)
    reused = [weight_set for weight_set in weight_sets if weight_set not in made]
    if reused:
        print(f"reused the weight sets {', '.join(reused)}: made from the same content before", flush=True)


if __name__ == "__main__":
    main()
