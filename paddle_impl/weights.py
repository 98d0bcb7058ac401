"""Loading and saving GreedyHash weights and the ImageNet AlexNet backbone on the Paddle side."""
import os

import numpy as np

from greedyhash_common.infra.errors import UserInputError
from greedyhash_common.state_dicts.layout import GREEDYHASH, check_state, detect_layout, missing_backbone_error
from greedyhash_common.state_dicts.paddle_files import read_paddle_state, write_paddle_state


def _model_shapes(layer):
    return {key: tuple(value.shape) for key, value in layer.state_dict().items()}


def _load_arrays(layer, state):
    for key, parameter in layer.state_dict().items():
        parameter.set_value(np.asarray(state[key], dtype=str(parameter.dtype).split(".")[-1]))


def load_weights(model, path):
    """Load a full GreedyHash checkpoint (.pdparams) into `model`, refusing any other layout or bit length."""
    state = read_paddle_state(path)
    layout = detect_layout(state, "paddle")
    if layout.kind != GREEDYHASH:
        raise UserInputError(f"{path}: holds only an AlexNet backbone, not GreedyHash weights;"
                             " pass it as the pretrained backbone instead")
    if layout.bit() != model.fc_plus.weight.shape[1]:
        raise UserInputError(f"{path}: weights for {layout.bit()}-bit codes, the model has"
                             f" {model.fc_plus.weight.shape[1]} bits")
    check_state(state, _model_shapes(model), path)
    _load_arrays(model, state)


def load_backbone(model, path):
    """Load the converted ImageNet AlexNet (.pdparams) into `model.alex`; fc_plus and fc keep their init."""
    if not os.path.isfile(path):
        raise missing_backbone_error(path)
    state = read_paddle_state(path)
    check_state(state, _model_shapes(model.alex), path)
    _load_arrays(model.alex, state)


def save_weights(model, path):
    write_paddle_state({key: value.numpy() for key, value in model.state_dict().items()}, path)
