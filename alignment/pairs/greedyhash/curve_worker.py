"""One framework's training for the loss-curve comparison, in its own process.

  python -m alignment.pairs.greedyhash.curve_worker torch|paddle --workdir logs/curve --seed 2000 --epochs 12 \
      --bit 12 --lr 0.01 --size 64 --eval-every 3 --out logs/curve/seed2000_torch.npy

Trains normally through the product's training loop (train_one_epoch), with the framework's own
dropout (seeded by --seed), from the suite's converted weights on the shared batch order; evaluates mAP
every --eval-every epochs and after the last; writes a reprod_log file. The batched loaders (fast_data)
give the reference loaders' batches bit for bit.
"""
import argparse
import time

import numpy as np

from greedyhash_common.app.training import global_batch_sizes
from greedyhash_common.data.dataset import load_data
from greedyhash_common.hyperparameters import BATCH_SIZE, QUANTIZATION_WEIGHT
from greedyhash_common.infra.errors import OneLineArgumentParser, exits_cleanly_on_bad_input

from alignment.paths import split_path, weights_path
from alignment.reprod_format import save_values
from alignment.sides import configured_side
from alignment.sides.allocator import in_a_side_process

from . import GREEDYHASH
from alignment.weight_sets import SEEDED, USER

LOSS_KEYS = ("loss_total", "loss_cross_entropy", "loss_quantization")
EVAL_BATCH_SIZE = 100


def get_args_parser():
    parser = OneLineArgumentParser(prog="python -m alignment.pairs.greedyhash.curve_worker", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("framework", choices=("torch", "paddle"))
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--bit", type=int, required=True)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--eval-every", type=int, required=True)
    parser.add_argument("--data")
    parser.add_argument("--weight-set", choices=(SEEDED, USER), default=SEEDED)
    parser.add_argument("--threads", type=int, default=1)
    return parser


def evaluated_after(epochs_done, every, epochs):
    return epochs_done % every == 0 or epochs_done == epochs


def train_and_evaluate(side, args):
    """Per-iteration loss terms; mAP and query accuracy at the evaluated epochs (`map_epoch`, from 1)."""
    prepared = load_data(args.data, split_path(args.workdir))
    side.seed_framework(args.seed)
    model = side.build_model(args.bit, "float32", weights_path(args.workdir, args.bit, args.weight_set,
                                                               side.WEIGHTS_SUFFIX))
    optimizer, scheduler = side.optimizer_builder(model, lr=args.lr)
    loader = side.fast_data.train_loader(*prepared.subset("train"), BATCH_SIZE, args.seed, size=args.size)
    query, database = (side.fast_data.eval_loader(*prepared.subset(part), EVAL_BATCH_SIZE, size=args.size)
                       for part in ("query", "database"))
    records = {key: [] for key in (*LOSS_KEYS, "map", "query_accuracy", "map_epoch")}
    for epoch in range(args.epochs):
        started = time.perf_counter()
        loader.batch_sampler.set_epoch(epoch)
        step_terms = []
        side.train_one_epoch(model, optimizer, loader, epoch, global_batch_sizes(len(loader.dataset), BATCH_SIZE,
                                                                                 args.seed, epoch),
                             QUANTIZATION_WEIGHT, step_terms=step_terms)
        for terms in step_terms:
            for key, term in zip(LOSS_KEYS, terms):
                records[key].append(term)
        scheduler.step()
        if evaluated_after(epoch + 1, args.eval_every, args.epochs):
            scores = side.evaluation.evaluate(model, query, database)
            records["map"].append(scores["map"])
            records["query_accuracy"].append(scores["query_accuracy"])
            records["map_epoch"].append(epoch + 1)
        print(f"{args.framework} seed {args.seed} epoch {epoch + 1}/{args.epochs}: "
              f"{time.perf_counter() - started:.1f} s", flush=True)  # suite.show_progress relays it
    return {key: np.array(series, dtype=np.float64) for key, series in records.items()}


@exits_cleanly_on_bad_input
@in_a_side_process
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    side = configured_side(args.framework, args.threads, GREEDYHASH)
    save_values(train_and_evaluate(side, args), args.out)


if __name__ == "__main__":
    main()
