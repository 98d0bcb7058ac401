"""What a checkpoint holds, GreedyHash weights or the ImageNet AlexNet backbone, with the names and shapes
each framework expects for it; and the strict check of a state dict (name -> numpy array) against them:
every key expected, every expected key present, every shape right, every problem listed at once."""
import dataclasses

from ..infra.errors import UserInputError
from .key_map import (
    GREEDYHASH_KEY_MAP,
    IMAGENET_HEAD_KEYS,
    TRANSPOSED_LINEAR_WEIGHTS,
    backbone_key_map,
    backbone_torch_shapes,
    backbone_transposed,
    greedyhash_torch_shapes,
    paddle_shape,
)

GREEDYHASH = "greedyhash"
ALEXNET_BACKBONE = "alexnet-backbone"
PADDLE_NAME_TABLE_KEY = "StructuredToParameterName@@"  # paddle.save's own bookkeeping, not a weight
IMAGENET_CHECKPOINT_NAME = "alexnet-owt-7be5be79.pth"
IMAGENET_CHECKPOINT_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"


@dataclasses.dataclass(frozen=True)
class Layout:
    """What a checkpoint holds, with the names and shapes each framework expects for it."""

    kind: str
    key_map: dict  # torch key -> paddle key
    transposed: tuple  # torch keys of Linear weights
    torch_shapes: dict  # torch key -> shape, for every key a torch file of this kind may hold
    dropped_torch_keys: tuple = ()  # keys a torch file holds that have no Paddle counterpart
    torch_defaults: dict = dataclasses.field(default_factory=dict)  # dropped keys a torch file must hold: their value

    def paddle_shapes(self):
        return {self.key_map[key]: paddle_shape(key, self.torch_shapes[key], self.transposed)
                for key in self.key_map}

    def bit(self):
        return self.torch_shapes["fc_plus.bias"][0] if self.kind == GREEDYHASH else None


def _greedyhash_layout(state, framework):
    def dimension(key, torch_axis):
        if key not in state:
            return None
        axis = torch_axis if framework == "torch" or key not in TRANSPOSED_LINEAR_WEIGHTS else 1 - torch_axis
        return state[key].shape[axis] if state[key].ndim > axis else None

    bit = dimension("fc_plus.bias", 0) or dimension("fc_plus.weight", 0) or dimension("fc.weight", 1)
    num_classes = dimension("fc.weight", 0)
    return Layout(GREEDYHASH, dict(GREEDYHASH_KEY_MAP), TRANSPOSED_LINEAR_WEIGHTS,
                  greedyhash_torch_shapes(bit or 0, num_classes or 0))


def _backbone_layout(state, framework):
    with_head = framework == "torch" and any(key in state for key in IMAGENET_HEAD_KEYS)
    return Layout(ALEXNET_BACKBONE, backbone_key_map(), backbone_transposed(),
                  backbone_torch_shapes(with_head), IMAGENET_HEAD_KEYS if with_head else ())


def missing_backbone_error(path):
    return UserInputError(
        f"{path}: no such file. The ImageNet AlexNet weights cannot be downloaded here: put torchvision's"
        f" {IMAGENET_CHECKPOINT_NAME} ({IMAGENET_CHECKPOINT_URL}, fetched on a machine with network) at that"
        " path; for Paddle convert it first: python -m weights_convert torch2paddle"
        f" {IMAGENET_CHECKPOINT_NAME} alexnet_backbone.pdparams"
    )


def detect_layout(state, framework):
    """A GreedyHash checkpoint names its parameters alex.* / fc_plus.* / fc.*; a torchvision AlexNet
    checkpoint features.* / classifier.*."""
    keys = [key for key in state if key != PADDLE_NAME_TABLE_KEY]
    if any(key.split(".")[0] in ("alex", "fc_plus", "fc") for key in keys):
        return _greedyhash_layout(state, framework)
    if any(key.split(".")[0] in ("features", "classifier") for key in keys):
        return _backbone_layout(state, framework)
    shown = ", ".join(sorted(keys)[:5]) or "no keys"
    raise UserInputError(f"not a GreedyHash or AlexNet checkpoint (keys: {shown})")


def check_state(state, expected_shapes, source):
    """Raise one error listing every missing, unexpected and mis-shaped key of `state`."""
    missing = sorted(set(expected_shapes) - set(state))
    unexpected = sorted(set(state) - set(expected_shapes))
    misshaped = sorted(
        f"{key}: {tuple(state[key].shape)} instead of {tuple(expected_shapes[key])}"
        for key in set(state) & set(expected_shapes)
        if tuple(state[key].shape) != tuple(expected_shapes[key])
    )
    problems = [f"{label} ({len(items)}): {', '.join(items)}"
                for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                     ("wrong shapes", misshaped)) if items]
    if problems:
        raise UserInputError(f"{source}: does not match the expected layout: " + "; ".join(problems))
