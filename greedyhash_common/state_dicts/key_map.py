"""The one key map between the torch and the Paddle GreedyHash, and the Linear weights to transpose.

Both implementations name their parameters alike, so the map is the identity; it is still written
out in full so that a change of names on either side has exactly one place to be made. torch stores
a Linear weight as [out, in], Paddle as [in, out]; convolution weights share one layout.
"""
GREEDYHASH_KEY_MAP = {
    "alex.features.0.weight": "alex.features.0.weight",
    "alex.features.0.bias": "alex.features.0.bias",
    "alex.features.3.weight": "alex.features.3.weight",
    "alex.features.3.bias": "alex.features.3.bias",
    "alex.features.6.weight": "alex.features.6.weight",
    "alex.features.6.bias": "alex.features.6.bias",
    "alex.features.8.weight": "alex.features.8.weight",
    "alex.features.8.bias": "alex.features.8.bias",
    "alex.features.10.weight": "alex.features.10.weight",
    "alex.features.10.bias": "alex.features.10.bias",
    "alex.classifier.1.weight": "alex.classifier.1.weight",
    "alex.classifier.1.bias": "alex.classifier.1.bias",
    "alex.classifier.4.weight": "alex.classifier.4.weight",
    "alex.classifier.4.bias": "alex.classifier.4.bias",
    "fc_plus.weight": "fc_plus.weight",
    "fc_plus.bias": "fc_plus.bias",
    "fc.weight": "fc.weight",
}

# A square weight (classifier.4 is 4096 x 4096) keeps its shape when the transpose is forgotten,
# so only this list, not a shape check, catches that mistake.
TRANSPOSED_LINEAR_WEIGHTS = (
    "alex.classifier.1.weight",
    "alex.classifier.4.weight",
    "fc_plus.weight",
    "fc.weight",
)

BACKBONE_PREFIX = "alex."
IMAGENET_HEAD_KEYS = ("classifier.6.weight", "classifier.6.bias")  # torchvision's 1000-class layer

_BACKBONE_TORCH_SHAPES = {
    "features.0.weight": (64, 3, 11, 11),
    "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5),
    "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3),
    "features.6.bias": (384,),
    "features.8.weight": (256, 384, 3, 3),
    "features.8.bias": (256,),
    "features.10.weight": (256, 256, 3, 3),
    "features.10.bias": (256,),
    "classifier.1.weight": (4096, 9216),
    "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096),
    "classifier.4.bias": (4096,),
}
_IMAGENET_HEAD_TORCH_SHAPES = {"classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,)}


def greedyhash_torch_shapes(bit, num_classes):
    shapes = {BACKBONE_PREFIX + key: shape for key, shape in _BACKBONE_TORCH_SHAPES.items()}
    shapes.update({"fc_plus.weight": (bit, 4096), "fc_plus.bias": (bit,), "fc.weight": (num_classes, bit)})
    return shapes


def backbone_torch_shapes(with_imagenet_head):
    shapes = dict(_BACKBONE_TORCH_SHAPES)
    if with_imagenet_head:
        shapes.update(_IMAGENET_HEAD_TORCH_SHAPES)
    return shapes


def backbone_key_map():
    """The map restricted to AlexNet's own parameters, named as torchvision names them."""
    return {
        torch_key[len(BACKBONE_PREFIX):]: paddle_key[len(BACKBONE_PREFIX):]
        for torch_key, paddle_key in GREEDYHASH_KEY_MAP.items()
        if torch_key.startswith(BACKBONE_PREFIX)
    }


def backbone_transposed():
    return tuple(key[len(BACKBONE_PREFIX):] for key in TRANSPOSED_LINEAR_WEIGHTS
                 if key.startswith(BACKBONE_PREFIX))


def paddle_shape(torch_key, torch_shape, transposed):
    return tuple(reversed(torch_shape)) if torch_key in transposed else tuple(torch_shape)
