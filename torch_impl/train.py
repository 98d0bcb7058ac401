"""Train GreedyHash on the torch side; paddle_impl.train mirrors it line for line where the APIs allow.

  python -m torch_impl.train --bit 48 --data cifar-10-python.tar.gz --pretrained alexnet-owt-7be5be79.pth
  python -m torch_impl.train --resume logs/train/torch-bit48          (continue a stopped run)
  torchrun --nproc_per_node 2 -m torch_impl.train ...                  (data parallel)

Reference values come from configs/bit<BIT>.yaml; every option is in --help (the parser is shared with
the Paddle side: greedyhash_common.app.train_config).
"""
import os
import time

import torch

from greedyhash_common.app import training
from greedyhash_common.app.cli_options import BEST_WEIGHTS_NAME, LAST_CHECKPOINT_NAME, RUN_HISTORY_NAME
from greedyhash_common.app.run_files import (check_fresh_output_dir, check_training_options, prepare_data,
                                             resume_checkpoint_path, run_folder)
from greedyhash_common.app.train_config import get_args_parser, resolve_config, save_config
from greedyhash_common.hyperparameters import QUANTIZATION_WEIGHT
from greedyhash_common.infra.errors import exits_cleanly_on_bad_input

from . import runtime
from .checkpoint import read_checkpoint, restore_rng_state, restore_training_state, rng_state, save_checkpoint
from .device import (device_name, finish_data_parallel, gather_from_processes, init_data_parallel, process_group,
                     select_device, sum_over_processes, wrap_data_parallel)
from .eval import evaluate
from .fast_data import eval_loader, train_loader
from .model import GreedyHash
from .optim import build_optimizer, current_lr
from .train_step import train_step
from .weights import load_backbone, save_weights

FRAMEWORK = "torch"
CPU = torch.device("cpu")


def train_one_epoch(model, optimizer, loader, epoch, global_sizes, alpha=QUANTIZATION_WEIGHT, device=CPU,
                    world_size=1, progress=None, last_checkpoint=None, step_terms=None):
    """One pass over `loader`, every batch through train_step; returns the epoch's mean loss terms and
    throughput. The alignment suite's train step drives this function (`step_terms` collects each step's
    loss terms), so the loop that trains is the loop that is checked."""
    model.train()
    dtype = next(model.parameters()).dtype
    meter = training.EpochMeter()
    for step, ((images, labels), global_size) in enumerate(zip(loader, global_sizes)):
        terms = train_step(model, optimizer, images.to(device, dtype), labels.to(device), alpha,
                           training.shard_weight(len(labels), global_size, world_size))
        share = len(labels) / global_size
        terms = sum_over_processes((torch.stack(terms) * share).tolist(), device, world_size)
        training.check_finite_loss(terms, epoch, step, current_lr(optimizer, None), last_checkpoint)
        meter.update(terms, global_size)
        if step_terms is not None:
            step_terms.append(terms)
        if progress:
            progress.update(step + 1, f"loss {meter.running_loss():.4f}")
    if progress:
        progress.close()
    return meter.summary()


def parameters_are_finite(model):
    return all(bool(torch.isfinite(parameter).all()) for parameter in model.parameters())


def timed_evaluate(model, query_loader, database_loader):
    started = time.perf_counter()
    metrics = evaluate(model, query_loader, database_loader)
    return metrics, time.perf_counter() - started


def build_loaders(data, config, rank, world_size):
    train_images, train_labels = data.subset("train")
    training.check_data_parallel_split(len(train_images), config["batch_size"], world_size)
    loader = train_loader(train_images, train_labels, config["batch_size"], config["seed"], config["image_size"],
                          config["num_workers"], rank, world_size)
    query_loader, database_loader = (eval_loader(*data.subset(part), config["batch_size"], config["image_size"],
                                                 config["num_workers"]) for part in ("query", "database"))
    return loader, query_loader, database_loader


def resolve_run(argv):
    """(configuration, checkpoint path or None, checkpoint or None) from the command line."""
    parser = get_args_parser(FRAMEWORK)
    given = vars(parser.parse_args(argv))
    if "resume" not in given:
        config = resolve_config(given, FRAMEWORK, parser)
        check_fresh_output_dir(config["output_dir"], FRAMEWORK)
        check_training_options(config)
        return config, None, None
    path = resume_checkpoint_path(given, FRAMEWORK)
    checkpoint = read_checkpoint(path)
    config = resolve_config(given, FRAMEWORK, parser, saved=checkpoint["config"], resumed_from=path)
    check_training_options(config)
    return config, path, checkpoint


def log(rank, message):
    if rank == 0:
        print(message, flush=True)


@exits_cleanly_on_bad_input
def main(argv=None):
    config, checkpoint_path, checkpoint = resolve_run(argv)
    if config["deterministic"]:
        training.deterministic_gpu_environment()
    runtime.configure(config["threads"], config["deterministic"])
    rank, local_rank, world_size = process_group()
    with run_folder(config["output_dir"], FRAMEWORK, checkpoint is None, rank == 0):
        train(config, checkpoint_path, checkpoint, rank, local_rank, world_size)


def train(config, checkpoint_path, checkpoint, rank, local_rank, world_size):
    """The run after start-up: data, model, the epochs, the checkpoints."""
    device = select_device(config["device"], local_rank)
    config["device"] = device_name(device)
    init_data_parallel(device, world_size)
    data = prepare_data(config["data"], config["split_file"], config["protocol"], config["seed"])

    training.seed_host(config["seed"])
    torch.manual_seed(config["seed"])
    model = GreedyHash(config["bit"])
    if checkpoint is None and config["pretrained"]:
        load_backbone(model, config["pretrained"])
    model.to(device)
    optimizer, scheduler = build_optimizer(model, config["lr"], config["lr_decay_every"])
    loader, query_loader, database_loader = build_loaders(data, config, rank, world_size)
    parallel_model = wrap_data_parallel(model, device, world_size)

    start_epoch, best_map, history, last_checkpoint = 0, None, [], None
    if checkpoint is not None:
        restore_training_state(checkpoint, model, optimizer, scheduler, checkpoint_path)
        start_epoch, best_map, history = checkpoint["epoch"] + 1, checkpoint["best_map"], checkpoint["history"]
        last_checkpoint = (checkpoint_path, checkpoint["epoch"])
        state, warning = training.rng_state_for_rank(checkpoint["rng"], rank, world_size)
        restore_rng_state(state, checkpoint_path)
        log(rank, f"resumed from {checkpoint_path} after epoch {start_epoch}" + (f"; note: {warning}" if warning else ""))
    elif world_size > 1:
        torch.manual_seed(config["seed"] + rank)  # each process its own dropout masks, as one process draws them

    output_dir = config["output_dir"]
    last_path, best_path = (os.path.join(output_dir, name[FRAMEWORK]) for name in (LAST_CHECKPOINT_NAME,
                                                                                   BEST_WEIGHTS_NAME))
    if rank == 0:
        save_config(config, output_dir)
    log(rank, training.run_description(config, runtime.describe(config["threads"], "float32"), world_size, data))

    for epoch in range(start_epoch, config["epochs"]):
        loader.batch_sampler.set_epoch(epoch)
        lr = current_lr(optimizer, scheduler)
        global_sizes = training.global_batch_sizes(len(loader.dataset), config["batch_size"], config["seed"], epoch)
        progress = training.ProgressBar(len(global_sizes), f"epoch {epoch + 1}/{config['epochs']}", enabled=rank == 0)
        summary = train_one_epoch(parallel_model, optimizer, loader, epoch, global_sizes, config["alpha"], device,
                                  world_size, progress, last_checkpoint)
        training.check_finite_weights(parameters_are_finite(model), epoch, last_checkpoint)
        scheduler.step()
        log(rank, training.epoch_log_line(epoch, config["epochs"], summary, lr))
        metrics = eval_seconds = None
        if rank == 0 and training.evaluation_due(epoch, config["epochs"], config["eval_every"]):
            metrics, eval_seconds = timed_evaluate(model, query_loader, database_loader)
            if best_map is None or metrics["map"] > best_map:
                best_map = metrics["map"]
                save_weights(model, best_path)
            log(rank, training.eval_log_line(epoch, metrics, eval_seconds, best_map))
        history.append(training.history_record(epoch, lr, summary, metrics, eval_seconds))
        rng_states = gather_from_processes(rng_state(), world_size)
        if rank == 0:
            save_checkpoint(last_path, model, optimizer, scheduler, epoch, config, best_map, history, rng_states)
            training.write_history(os.path.join(output_dir, RUN_HISTORY_NAME), history)
        last_checkpoint = (last_path, epoch)

    finish_data_parallel(world_size)
    if rank == 0:  # only the first process evaluates, so only it knows the best mAP
        print(training.closing_line(config, start_epoch, best_map, last_path, best_path), flush=True)


if __name__ == "__main__":
    main()
