"""Loading and saving GreedyHash weights and the ImageNet AlexNet backbone on the torch side."""
import os

import torch

from greedyhash_common.infra.errors import UserInputError
from greedyhash_common.state_dicts.key_map import IMAGENET_HEAD_KEYS
from greedyhash_common.state_dicts.layout import GREEDYHASH, check_state, detect_layout, missing_backbone_error

from .torch_files import read_torch_state, write_torch_state


def _model_shapes(module):
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def _load_arrays(module, state):
    module.load_state_dict({key: torch.from_numpy(array) for key, array in state.items()}, strict=True)


def load_weights(model, path):
    """Load a full GreedyHash checkpoint (.pth) into `model`, refusing any other layout or bit length."""
    state = read_torch_state(path)
    layout = detect_layout(state, "torch")
    if layout.kind != GREEDYHASH:
        raise UserInputError(f"{path}: holds only an AlexNet backbone, not GreedyHash weights;"
                             " pass it as the pretrained backbone instead")
    if layout.bit() != model.fc_plus.out_features:
        raise UserInputError(f"{path}: weights for {layout.bit()}-bit codes, the model has"
                             f" {model.fc_plus.out_features} bits")
    check_state(state, _model_shapes(model), path)
    _load_arrays(model, state)


def load_backbone(model, path):
    """Load torchvision's ImageNet AlexNet checkpoint into `model.alex`; fc_plus and fc keep their init."""
    if not os.path.isfile(path):
        raise missing_backbone_error(path)
    state = {key: value for key, value in read_torch_state(path).items() if key not in IMAGENET_HEAD_KEYS}
    check_state(state, _model_shapes(model.alex), path)
    _load_arrays(model.alex, state)


def save_weights(model, path):
    write_torch_state({key: value.detach().cpu().numpy() for key, value in model.state_dict().items()}, path)
