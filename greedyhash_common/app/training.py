"""Framework-free parts of the training loop that torch_impl.train and paddle_impl.train share: seeding
and RNG states of Python and numpy, data-parallel batch shares, the epoch's bookkeeping and log lines,
the progress bar, the stop on a non-finite loss, the history file and the checkpoint's common fields."""
import contextlib
import json
import math
import os
import random
import sys
import time

import numpy as np

from ..data.batch_order import epoch_batches
from ..infra.atomic import write_text
from ..infra.errors import UserInputError, one_line_reason

LOSS_TERMS = ("loss", "cross_entropy", "quantization")
CHECKPOINT_FORMAT = "greedyhash-training-checkpoint"
CHECKPOINT_VERSION = 1
_CHECKPOINT_FIELDS = {"format": str, "version": int, "framework": str, "epoch": int, "config": dict,
                      "best_map": (float, type(None)), "history": list, "rng": list, "model": dict,
                      "optimizer": dict, "scheduler": dict}


class TrainingDiverged(UserInputError):
    """The loss or the weights stopped being finite; the run stops and keeps its last good checkpoint."""


def seed_host(seed):
    random.seed(seed)
    np.random.seed(seed)


def host_rng_state():
    """Python's and numpy's global RNG states as plain lists and numbers (loadable without pickled objects)."""
    version, internal, gauss = random.getstate()
    _, keys, position, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    return {"python": [version, list(internal), gauss],
            "numpy": [keys.tolist(), int(position), int(has_gauss), float(cached_gaussian)]}


def restore_host_rng_state(state):
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    keys, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state(("MT19937", np.asarray(keys, dtype=np.uint32), position, has_gauss, cached_gaussian))


def rng_state_for_rank(states, rank, world_size):
    """(this process's saved RNG state, a warning or None): a run resumed with another number of processes
    cannot continue every process's random stream."""
    if len(states) == world_size:
        return states[rank], None
    return states[min(rank, len(states) - 1)], (
        f"the checkpoint was written by {len(states)} process(es), this run has {world_size}: dropout draws "
        "will differ from those of an uninterrupted run")


def deterministic_gpu_environment():
    """TF32 off for cuBLAS and cuDNN in both frameworks, and cuBLAS's reproducible workspace (which torch's
    deterministic mode asks for); must be set before the first CUDA call."""
    os.environ["NVIDIA_TF32_OVERRIDE"] = "0"
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def global_batch_sizes(num_items, batch_size, seed, epoch):
    """The size of each global batch of the epoch, in order (what every process's shard is a part of)."""
    return [len(batch) for batch in epoch_batches(num_items, batch_size, seed, epoch)]


def check_data_parallel_split(num_items, batch_size, world_size):
    """Every global batch must give each process at least one image (an empty shard has no mean loss)."""
    smallest = min(batch_size, num_items % batch_size or batch_size)
    if smallest < world_size:
        raise UserInputError(f"{world_size} processes but a global batch of {smallest} images (training set "
                             f"{num_items}, --batch-size {batch_size}): every process needs at least one image")


def shard_weight(shard_size, global_size, world_size):
    """Factor on a process's mean loss so that the mean all-reduce of gradients gives the single-process
    gradient of the global batch: world_size * shard_size / global_size (1 for one process)."""
    return world_size * shard_size / global_size


def check_finite_loss(terms, epoch, step, lr, last_checkpoint):
    """Stop with a clear message when a loss term is NaN or infinite."""
    bad = {name: value for name, value in zip(LOSS_TERMS, terms) if not math.isfinite(value)}
    if bad:
        where = f"epoch {epoch + 1}, step {step + 1}"
        raise TrainingDiverged(f"the loss is not finite at {where} ({_terms_text(bad)}; lr {lr:.3g}): training "
                               f"diverged and was stopped. {_kept_checkpoint_text(last_checkpoint)}")


def check_finite_weights(all_finite, epoch, last_checkpoint):
    if not all_finite:
        raise TrainingDiverged(f"the weights hold NaN or Inf after epoch {epoch + 1}: training diverged and was "
                               f"stopped. {_kept_checkpoint_text(last_checkpoint)}")


def _kept_checkpoint_text(last_checkpoint):
    if last_checkpoint is None:
        return "No checkpoint had been written yet. Try a smaller --lr."
    path, epoch = last_checkpoint
    return f"The last good checkpoint is kept: {path} (after epoch {epoch + 1}). Try a smaller --lr."


def _terms_text(values):
    return ", ".join(f"{name} {value:.4g}" for name, value in values.items())


class EpochMeter:
    """Loss terms averaged over the epoch's images, and the training throughput."""

    def __init__(self):
        self.sums = dict.fromkeys(LOSS_TERMS, 0.0)
        self.images = 0
        self.started = time.perf_counter()

    def update(self, terms, images):
        for name, value in zip(LOSS_TERMS, terms):
            self.sums[name] += value * images
        self.images += images

    def running_loss(self):
        return self.sums["loss"] / max(self.images, 1)

    def summary(self):
        seconds = time.perf_counter() - self.started
        means = {name: total / max(self.images, 1) for name, total in self.sums.items()}
        return {**means, "images": self.images, "seconds": seconds, "images_per_second": self.images / seconds}


class ProgressBar:
    """One self-rewriting line on a terminal; silent when the stream is not a terminal (logs, CI, pipes)."""

    WIDTH = 24
    MIN_INTERVAL = 0.2  # seconds between redraws

    def __init__(self, total, label, stream=None, enabled=True):
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.total, self.label = total, label
        self.last_draw = 0.0

    def update(self, done, text=""):
        now = time.perf_counter()
        if not self.enabled or (now - self.last_draw < self.MIN_INTERVAL and done < self.total):
            return
        self.last_draw = now
        filled = self.WIDTH * done // max(self.total, 1)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total} {text}\033[K")
        self.stream.flush()

    def close(self):
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


def with_progress(loader, label):
    """`loader`'s batches, their count drawn on a terminal as they are consumed (evaluation's encoding)."""
    bar = ProgressBar(len(loader), label)
    for done, batch in enumerate(loader, 1):
        yield batch
        bar.update(done)
    bar.close()


def evaluation_due(epoch, epochs, eval_every):
    return (epoch + 1) % eval_every == 0 or epoch + 1 == epochs


def epoch_log_line(epoch, epochs, summary, lr):
    return (f"epoch {epoch + 1}/{epochs}  loss {summary['loss']:.4f} (cross-entropy {summary['cross_entropy']:.4f}, "
            f"quantization {summary['quantization']:.4f})  lr {lr:.2e}  {summary['seconds']:.1f} s  "
            f"{summary['images_per_second']:.1f} img/s")


def eval_log_line(epoch, metrics, seconds, best_map):
    return (f"epoch {epoch + 1} eval  mAP {metrics['map']:.4f}  query accuracy {metrics['query_accuracy']:.4f}  "
            f"best mAP {best_map:.4f}  ({seconds:.1f} s)")


def run_description(config, environment, world_size, data):
    """What the run is about to do, on what, with what: the log's first lines."""
    backbone = config["pretrained"] or "none (random initialization; the paper's figures need the ImageNet backbone)"
    sizes = ", ".join(f"{len(getattr(data.split, part))} {part}" for part in ("train", "query", "database"))
    return "\n".join([
        f"{environment['framework']} {environment['version']} on {config['device']} ({environment['device']}), "
        f"{config['threads']} threads, {world_size} process(es)",
        f"data: {data.source}, protocol {data.split.protocol}: {sizes} images",
        f"{config['bit']}-bit codes, {config['epochs']} epochs, batch {config['batch_size']}, lr {config['lr']:g} "
        f"(x0.1 every {config['lr_decay_every']} epochs), alpha {config['alpha']:g}, seed {config['seed']}, "
        f"{config['image_size']} px",
        f"pretrained backbone: {backbone}",
        f"output: {config['output_dir']}",
    ])


def closing_line(config, start_epoch, best_map, last_path, best_path):
    if start_epoch >= config["epochs"]:
        return (f"nothing to train: the run has finished its {config['epochs']} epochs "
                "(a larger --epochs continues it)")
    return (f"done after {config['epochs']} epochs: best mAP {best_map:.4f} ({best_path}); "
            f"last checkpoint {last_path}")


def history_record(epoch, lr, summary, metrics=None, eval_seconds=None):
    record = {"epoch": epoch + 1, "lr": lr, **summary}
    if metrics is not None:
        record.update(metrics, eval_seconds=eval_seconds)
    return record


def write_history(path, history):
    write_text(path, json.dumps(history, indent=1) + "\n")


def checkpoint_record(framework, epoch, config, best_map, history, rng_states):
    """The framework-free fields of a training checkpoint; each side adds model, optimizer, scheduler."""
    return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "framework": framework, "epoch": epoch,
            "config": config, "best_map": best_map, "history": history, "rng": rng_states}


def is_checkpoint_record(content):
    return isinstance(content, dict) and content.get("format") == CHECKPOINT_FORMAT


def check_checkpoint_record(content, path, framework):
    """Refuse anything but a complete training checkpoint of `framework` written by this project."""
    if not is_checkpoint_record(content):
        raise UserInputError(f"{path}: not a training checkpoint of this project")
    if content["framework"] != framework:
        raise UserInputError(f"{path}: a {content['framework']} training checkpoint; this is the {framework} "
                             "side (convert its best weights with python -m weights_convert)")
    problems = [name for name, kind in _CHECKPOINT_FIELDS.items() if not isinstance(content.get(name), kind)]
    problems += [name for name, valid in (("epoch", _valid_epoch), ("history", _valid_history), ("rng", _valid_rng))
                 if name not in problems and not valid(content[name])]
    if problems:
        raise UserInputError(f"{path}: incomplete training checkpoint (missing or malformed: {', '.join(problems)})")
    if content["version"] != CHECKPOINT_VERSION:
        raise UserInputError(f"{path}: checkpoint version {content['version']}, this code reads "
                             f"version {CHECKPOINT_VERSION}")
    return content


def _valid_epoch(epoch):
    return not isinstance(epoch, bool) and epoch >= 0


def _valid_history(history):
    """A list of per-epoch records that write_history can save again."""
    if not all(isinstance(record, dict) for record in history):
        return False
    try:
        json.dumps(history)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def _valid_rng(states):
    """One RNG state per process, each with the Python, numpy and framework parts rng_state() writes."""
    return bool(states) and all(isinstance(state, dict) and {"python", "numpy", "framework"} <= set(state)
                                for state in states)


@contextlib.contextmanager
def refusing_malformed(path, what):
    """Turn any failure to restore `what` from the checkpoint `path` (damaged or crafted) into one line."""
    try:
        yield
    except UserInputError:
        raise
    except Exception as error:  # Python, numpy and both frameworks raise many types for a bad state
        raise UserInputError(f"{path}: {what} in the checkpoint do not fit ({one_line_reason(error)})") from None


def check_checkpoint_bit(checkpoint, bit, path):
    saved_bit = checkpoint["config"].get("bit")
    if saved_bit != bit:
        raise UserInputError(f"{path}: a checkpoint of {saved_bit}-bit codes, the model has {bit} bits "
                             f"(pass --bit {saved_bit})")
