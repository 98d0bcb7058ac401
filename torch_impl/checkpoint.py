"""Training checkpoints on the torch side (paddle_impl.checkpoint mirrors it).

A checkpoint holds what a run needs to continue exactly where it stopped: model, optimizer, scheduler,
the finished epoch, every process's RNG states, the configuration, the best mAP and the history. It
holds only tensors and plain Python values, so it is written with torch.save and read back with
weights_only=True: a checkpoint from someone else cannot run code.
"""
import torch

from greedyhash_common.app.training import (check_checkpoint_bit, check_checkpoint_record, checkpoint_record,
                                            host_rng_state, refusing_malformed, restore_host_rng_state)
from greedyhash_common.infra.atomic import atomic_path

from .torch_files import load_torch_file

from .weights import load_weights

FRAMEWORK = "torch"


def rng_state():
    """This process's RNG states: Python, numpy, torch's CPU generator and every GPU's."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {**host_rng_state(), "framework": {"cpu": torch.get_rng_state(), "gpu": cuda}}


def restore_rng_state(state, path):
    with refusing_malformed(path, "the random-number states"):
        restore_host_rng_state(state)
        torch.set_rng_state(state["framework"]["cpu"])
        if state["framework"]["gpu"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["framework"]["gpu"])


def save_checkpoint(path, model, optimizer, scheduler, epoch, config, best_map, history, rng_states):
    """Write the training state after `epoch` (0-based) atomically: a reader sees the old file or the new one."""
    content = {**checkpoint_record(FRAMEWORK, epoch, config, best_map, history, rng_states),
               "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    with atomic_path(path) as tmp:
        torch.save(content, tmp)


def read_checkpoint(path):
    return check_checkpoint_record(load_torch_file(path), path, FRAMEWORK)


def restore_training_state(checkpoint, model, optimizer, scheduler, path):
    check_checkpoint_bit(checkpoint, model.fc_plus.out_features, path)
    with refusing_malformed(path, "the model, optimizer and scheduler states"):
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])


def load_model_weights(model, path):
    """Weights for evaluation or prediction: a weights file (best.pth, a converted checkpoint) or a training
    checkpoint (last.pth), whose model part torch_impl.weights reads directly."""
    load_weights(model, path)
