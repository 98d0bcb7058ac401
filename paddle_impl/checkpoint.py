"""Training checkpoints on the Paddle side (torch_impl.checkpoint mirrors it).

A checkpoint holds what a run needs to continue exactly where it stopped: model, optimizer, scheduler,
the finished epoch, every process's RNG states, the configuration, the best mAP and the history.
paddle.load would unpickle whatever a file names, so a checkpoint is never read with it: every value is
stored as a numpy array or a plain Python value (Paddle's generator states through their own
__getstate__), pickled, and read back with the restricted unpickler of greedyhash_common.infra.safe_pickle,
which admits nothing else. A checkpoint from someone else cannot run code.

Paddle names the optimizer's accumulators after its parameters' generated names (`linear_3.w_0_velocity_0`),
which depend on how many layers the process built before; the checkpoint uses the model's structured
names (`fc_plus.weight_velocity_0`) instead.
"""
import pickle

import paddle

from greedyhash_common.app.training import (check_checkpoint_bit, check_checkpoint_record, checkpoint_record,
                                            host_rng_state, is_checkpoint_record, refusing_malformed,
                                            restore_host_rng_state)
from greedyhash_common.infra.atomic import atomic_path
from greedyhash_common.infra.errors import UserInputError
from greedyhash_common.state_dicts.layout import check_state
from greedyhash_common.state_dicts.paddle_files import PADDLE_PICKLE_PROTOCOL, check_named_arrays, read_paddle_file

from .runtime import has_gpu
from .weights import load_weights

FRAMEWORK = "paddle"
SCHEDULER_KEY = "LR_Scheduler"  # where Paddle's optimizer state dict carries its scheduler's state


def rng_state():
    """This process's RNG states: Python, numpy, Paddle's CPU generator and every GPU's."""
    gpu = paddle.get_cuda_rng_state() if has_gpu() else []
    return {**host_rng_state(), "framework": {"cpu": _plain_states(paddle.get_rng_state("cpu")),
                                              "gpu": _plain_states(gpu)}}


def restore_rng_state(state, path):
    with refusing_malformed(path, "the random-number states"):
        restore_host_rng_state(state)
        paddle.set_rng_state(_generator_states(state["framework"]["cpu"]), device="cpu")
        if state["framework"]["gpu"] and has_gpu():
            paddle.set_cuda_rng_state(_generator_states(state["framework"]["gpu"]))


def _plain_states(generator_states):
    return [state.__getstate__() for state in generator_states]


def _generator_states(plain_states):
    states = []
    for plain in plain_states:
        state = paddle.base.core.GeneratorState.__new__(paddle.base.core.GeneratorState)
        state.__setstate__(tuple(plain))
        states.append(state)
    return states


def save_checkpoint(path, model, optimizer, scheduler, epoch, config, best_map, history, rng_states):
    """Write the training state after `epoch` (0-based) atomically: a reader sees the old file or the new one."""
    optimizer_state = {key: value.numpy() for key, value in optimizer.state_dict().items() if key != SCHEDULER_KEY}
    content = {**checkpoint_record(FRAMEWORK, epoch, config, best_map, history, rng_states),
               "model": {key: value.numpy() for key, value in model.state_dict().items()},
               "optimizer": _renamed(optimizer_state, _structured_names(model)),
               "scheduler": scheduler.state_dict()}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            pickle.dump(content, handle, protocol=PADDLE_PICKLE_PROTOCOL)


def read_checkpoint(path):
    return check_checkpoint_record(read_paddle_file(path), path, FRAMEWORK)


def restore_training_state(checkpoint, model, optimizer, scheduler, path):
    check_checkpoint_bit(checkpoint, _bit(model), path)
    _set_model_state(model, checkpoint["model"], path)
    generated_names = {structured: generated for generated, structured in _structured_names(model).items()}
    optimizer_state = _renamed(check_named_arrays(checkpoint["optimizer"], path), generated_names, path)
    expected = {f"{parameter.name}_velocity_0" for parameter in model.parameters()}
    if set(optimizer_state) != expected:
        raise UserInputError(f"{path}: the optimizer state does not fit this model "
                             f"({len(optimizer_state)} accumulators for {len(expected)} parameters)")
    with refusing_malformed(path, "the optimizer and scheduler states"):
        optimizer.set_state_dict({**optimizer_state, SCHEDULER_KEY: checkpoint["scheduler"]})


def load_model_weights(model, path):
    """Weights for evaluation, prediction or export: a weights file (best.pdparams, a converted checkpoint)
    or a training checkpoint (last.pdstate)."""
    content = read_paddle_file(path)
    if not is_checkpoint_record(content):
        load_weights(model, path)
        return
    checkpoint = check_checkpoint_record(content, path, FRAMEWORK)
    check_checkpoint_bit(checkpoint, _bit(model), path)
    _set_model_state(model, checkpoint["model"], path)


def _bit(model):
    return model.fc_plus.weight.shape[1]


def _set_model_state(model, state, path):
    # set_state_dict only warns about missing or mis-shaped entries, so check them first.
    check_named_arrays(state, path)
    check_state(state, {key: tuple(value.shape) for key, value in model.state_dict().items()}, path)
    with refusing_malformed(path, "the model weights"):
        model.set_state_dict(state)


def _structured_names(model):
    """Generated parameter name -> structured name (`linear_3.w_0` -> `fc_plus.weight`)."""
    return {parameter.name: name for name, parameter in model.named_parameters()}


def _renamed(state, names, path=None):
    """Rename accumulator keys `<parameter name>_<accumulator>` by `names`, longest parameter name first."""
    owners = sorted(names, key=len, reverse=True)
    renamed = {}
    for key, value in state.items():
        owner = next((name for name in owners if key.startswith(name + "_")), None)
        if owner is None:
            raise UserInputError(f"{path}: optimizer state {key!r} belongs to no parameter of this model")
        renamed[names[owner] + key[len(owner):]] = value
    return renamed
