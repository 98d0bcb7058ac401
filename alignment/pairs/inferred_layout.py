"""The converter's Layout of a torch model and its Paddle port, inferred from the two module trees.

Each side is described without its framework (`describe`: every state-dict key with its layer's name, its
layer's type and its shape, in the order the model declares them); the layers that hold state are then
paired in that order by what they are: the layer's kind (Conv2d / Conv2D, BatchNorm2d / BatchNorm2D,
Linear...) and the shapes of its tensors in torch's layout. What follows from the kind, never from the
shape: a Linear weight is stored transposed in Paddle (a square one keeps its shape), BatchNorm's
running_mean / running_var are Paddle's _mean / _variance, torch's num_batches_tracked has no Paddle
counterpart (dropped; 0 when converting back). Keys that pair with nothing are listed in one error with
the override that names them (`key_map={"torch key": "paddle key"}`).
"""
import difflib
import json
import re

import numpy as np

from greedyhash_common.infra.errors import UserInputError
from greedyhash_common.state_dicts.layout import Layout

PADDLE_NAME_OF = {"running_mean": "_mean", "running_var": "_variance"}  # a BatchNorm's buffers, torch -> Paddle
TORCH_ONLY = {"num_batches_tracked"}  # torch's count of training batches; Paddle keeps none
TRANSPOSED_KINDS = {"linear"}  # Paddle stores their weight [in, out], torch [out, in]
SHOWN = 8  # unmatched keys named in the error, per side


def kind_of(type_name):
    """A layer's kind, the same for both frameworks' names of it: Conv2d and Conv2D are "conv",
    BatchNorm2d, BatchNorm2D and BatchNorm "batchnorm", ConvTranspose2d and Conv2DTranspose "convtranspose"."""
    name = type_name.lower()
    if "conv" in name and "transpose" in name:
        return "convtranspose"
    return re.sub(r"[123]d$", "", name)


def describe(model, framework):
    """[{"key", "layer", "type", "shape"}] of every state-dict entry of `model`, in its order."""
    named = model.named_modules() if framework == "torch" else model.named_sublayers(include_self=True)
    layers = dict(named)
    entries = []
    for key, value in model.state_dict().items():
        layer, _, _ = key.rpartition(".")
        entries.append({"key": key, "layer": layer, "type": type(layers[layer]).__name__,
                        "shape": [int(size) for size in value.shape]})
    return entries


def _torch_layout_shape(entry):
    """The shape of a Paddle entry in torch's layout: a Linear weight's axes reversed."""
    if kind_of(entry["type"]) in TRANSPOSED_KINDS and entry["key"].endswith(".weight"):
        return tuple(reversed(entry["shape"]))
    return tuple(entry["shape"])


def _torch_local(paddle_key):
    local = paddle_key.rpartition(".")[2]
    return {paddle: torch for torch, paddle in PADDLE_NAME_OF.items()}.get(local, local)


def _layers(entries, shape_of, local_of):
    """[(layer name, signature, [entries])] in order; the signature is what pairs a layer with its counterpart."""
    grouped = {}
    for entry in entries:
        grouped.setdefault(entry["layer"], []).append(entry)
    return [(name, (kind_of(members[0]["type"]), tuple((local_of(entry["key"]), shape_of(entry)) for entry in members)),
             members) for name, members in grouped.items()]


def _error(torch_left, paddle_left, paddle_shapes):
    def listed(keys):
        return ", ".join(keys[:SHOWN]) + (f", ... ({len(keys)} in all)" if len(keys) > SHOWN else "")

    torch_keys = [entry["key"] for entry in torch_left]
    paddle_keys = [entry["key"] for entry in paddle_left]
    hint = ""
    for entry in torch_left:
        same = [key for key in paddle_keys if paddle_shapes[key] == tuple(entry["shape"])]
        if same:
            hint = (f"; if they are the same tensors, name them: key_map={{{json.dumps(entry['key'])}:"
                    f" {json.dumps(same[0])}}} (CLI: --key-map {entry['key']}={same[0]})")
            break
    return UserInputError("cannot infer the key map: torch keys with no Paddle counterpart:"
                          f" {listed(torch_keys) or 'none'}; Paddle keys with no torch counterpart:"
                          f" {listed(paddle_keys) or 'none'}{hint}")


def infer_layout(torch_entries, paddle_entries, kind, key_map=None):
    """The Layout from the two descriptions (`describe`), with `key_map` ({torch key: Paddle key}) naming any
    pairs the trees cannot decide."""
    key_map = dict(key_map or {})
    unknown = [key for key in key_map if key not in {entry["key"] for entry in torch_entries}]
    unknown += [key for key in key_map.values() if key not in {entry["key"] for entry in paddle_entries}]
    if unknown:
        raise UserInputError(f"key_map names keys the models do not have: {', '.join(unknown)}")
    paddle_shapes = {entry["key"]: _torch_layout_shape(entry) for entry in paddle_entries}
    given = set(key_map.values())
    torch_rest = [entry for entry in torch_entries if entry["key"] not in key_map
                  and entry["key"].rpartition(".")[2] not in TORCH_ONLY]
    paddle_rest = [entry for entry in paddle_entries if entry["key"] not in given]
    torch_layers = _layers(torch_rest, lambda entry: tuple(entry["shape"]), lambda key: key.rpartition(".")[2])
    paddle_layers = _layers(paddle_rest, _torch_layout_shape, _torch_local)
    matcher = difflib.SequenceMatcher(None, [layer[1] for layer in torch_layers], [layer[1] for layer in paddle_layers],
                                      autojunk=False)
    paired_torch, paired_paddle = set(), set()
    for block in matcher.get_matching_blocks():
        for offset in range(block.size):
            torch_members = torch_layers[block.a + offset][2]
            paddle_members = paddle_layers[block.b + offset][2]
            key_map.update({mine["key"]: theirs["key"] for mine, theirs in zip(torch_members, paddle_members)})
            paired_torch.add(block.a + offset)
            paired_paddle.add(block.b + offset)
    torch_left = [entry for index, (_, _, members) in enumerate(torch_layers) if index not in paired_torch
                  for entry in members]
    paddle_left = [entry for index, (_, _, members) in enumerate(paddle_layers) if index not in paired_paddle
                   for entry in members]
    if torch_left or paddle_left:
        raise _error(torch_left, paddle_left, paddle_shapes)
    return _layout(torch_entries, key_map, kind)


def _layout(torch_entries, key_map, kind):
    by_key = {entry["key"]: entry for entry in torch_entries}
    dropped = tuple(key for key in by_key if key not in key_map)
    transposed = tuple(key for key in key_map if kind_of(by_key[key]["type"]) in TRANSPOSED_KINDS
                       and key.endswith(".weight"))
    return Layout(kind, {key: key_map[key] for key in by_key if key in key_map}, transposed,
                  {key: tuple(entry["shape"]) for key, entry in by_key.items()}, dropped_torch_keys=dropped,
                  torch_defaults={key: np.array(0, dtype=np.int64) for key in dropped})


def layout_of_models(torch_model, paddle_model, kind, key_map=None):
    """The Layout of two instantiated models (both frameworks in this process)."""
    return infer_layout(describe(torch_model, "torch"), describe(paddle_model, "paddle"), kind, key_map)


def layout_as_json(layout):
    return json.dumps({"kind": layout.kind, "key_map": layout.key_map, "transposed": list(layout.transposed),
                       "torch_shapes": {key: list(shape) for key, shape in layout.torch_shapes.items()},
                       "dropped_torch_keys": list(layout.dropped_torch_keys)}, indent=1) + "\n"


def layout_from_json(text):
    data = json.loads(text)
    return Layout(data["kind"], data["key_map"], tuple(data["transposed"]),
                  {key: tuple(shape) for key, shape in data["torch_shapes"].items()},
                  dropped_torch_keys=tuple(data["dropped_torch_keys"]),
                  torch_defaults={key: np.array(0, dtype=np.int64) for key in data["dropped_torch_keys"]})
