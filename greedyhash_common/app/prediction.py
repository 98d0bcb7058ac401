"""Framework-free parts of prediction and inference: reading the query image, the class and probability,
the code as bits, Hamming retrieval of the nearest database images, the PNG grid, and the reports."""
import json
import warnings

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from ..data.cifar10 import CLASS_NAMES, IMAGE_HEIGHT, IMAGE_WIDTH
from ..infra.atomic import atomic_path, write_text
from ..infra.errors import UserInputError
from ..metric.hamming_map import hamming_distances

DEFAULT_TOP_K = 10
TILE = 96  # pixels per image in the grid (32x32 images enlarged 3x)
CAPTION_HEIGHT = 28


MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS  # Pillow's decompression-bomb limit, about 89 megapixels
SIXTEEN_BIT_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
SIXTEEN_TO_EIGHT_BITS = 65535 / 255
WIDE_MODES = ("I", "F")  # 32-bit integer or float pixels: no range says what is black and what is white


def read_image_file(path):
    """Any image file Pillow reads, as a CIFAR-10-like uint8 (32, 32, 3) RGB array (antialiased resize)."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; decoding it would take gigabytes.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                rgb = _as_rgb(image, path)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UserInputError(f"{path}: too large an image (more than {MAX_IMAGE_PIXELS} pixels); "
                             "shrink it first, it is resized to 32x32 anyway") from None
    except FileNotFoundError:
        raise UserInputError(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise UserInputError(f"{path}: a folder, not an image file") from None
    except UnidentifiedImageError:
        raise UserInputError(f"{path}: not an image Pillow can read (PNG, JPEG, BMP, ...)") from None
    except OSError as error:  # truncated or corrupt image data
        raise UserInputError(f"{path}: unreadable image ({error})") from None
    return np.asarray(rgb.resize((IMAGE_WIDTH, IMAGE_HEIGHT), Image.BILINEAR), dtype=np.uint8)


def _as_rgb(image, path):
    """8-bit RGB. Pillow's convert("RGB") clips 16-bit grey values to 255 (nearly every pixel white), so
    those are scaled to 8 bits first."""
    if image.mode in SIXTEEN_BIT_GREY_MODES:
        grey = np.round(np.asarray(image, dtype=np.float64) / SIXTEEN_TO_EIGHT_BITS).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode in WIDE_MODES:
        raise UserInputError(f"{path}: a {image.mode}-mode image (32-bit integer or float pixels) has no fixed "
                             "range to map to 8-bit colours; save it as an 8- or 16-bit image first")
    return image.convert("RGB")


def query_image(options, data):
    """(image, true label or None, description) for --image FILE or --index N (the N-th query image)."""
    if options.get("image") is not None:
        return read_image_file(options["image"]), None, options["image"]
    images, labels = data.subset("query")
    index = options["index"]
    if index >= len(images):
        raise UserInputError(f"--index {index}: the split has {len(images)} query images (0..{len(images) - 1})")
    return images[index], int(labels[index]), f"query image {index} (dataset image {data.split.query[index]})"


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def code_bits(code):
    """A sign code as a string of bits, 1 for +1 and 0 for -1."""
    return "".join("1" if value > 0 else "0" for value in np.ravel(code))


def classification(probabilities, code, h, true_label=None, source=None):
    """The report of one image from its class probabilities, sign code and h (the code's continuous values:
    where |h| is near 0 two correct encoders may give different signs, see alignment.check.compare_codes)."""
    label = int(np.argmax(probabilities))
    return {"source": source, "class": label, "class_name": CLASS_NAMES[label],
            "probability": float(probabilities[label]), "code": code_bits(code), "h": np.ravel(h).tolist(),
            "true_class": true_label, "true_class_name": None if true_label is None else CLASS_NAMES[true_label]}


def nearest_neighbours(code, database_codes, database_labels, database_indices, top_k):
    """The top_k database items by Hamming distance (ties by database order, as mAP's ties="index")."""
    distances = hamming_distances(np.asarray(code)[None], database_codes)[0]
    order = np.argsort(distances, kind="stable")[:top_k]
    return [{"database_position": int(position), "dataset_index": int(database_indices[position]),
             "class": int(database_labels[position]), "class_name": CLASS_NAMES[int(database_labels[position])],
             "distance": int(distances[position])} for position in order]


def classification_lines(result):
    truth = "" if result["true_class"] is None else f"  (true class: {result['true_class_name']})"
    return [f"image: {result['source']}",
            f"class: {result['class']} {result['class_name']}  probability: {result['probability']:.4f}{truth}",
            f"code: {result['code']}"]


def neighbour_lines(neighbours):
    return [f"  {rank:2d}. database image {item['dataset_index']:6d}  {item['class_name']:<10s} "
            f"distance {item['distance']}" for rank, item in enumerate(neighbours, 1)]


def write_retrieval_grid(path, query, result, neighbours, database_images):
    """A PNG: the query with its predicted class, then the retrieved images with class and distance."""
    tiles = [(query, f"query: {result['class_name']}", f"p={result['probability']:.2f}")]
    tiles += [(database_images[item["database_position"]], item["class_name"], f"d={item['distance']}")
              for item in neighbours]
    grid = Image.new("RGB", (TILE * len(tiles), TILE + CAPTION_HEIGHT), "white")
    draw = ImageDraw.Draw(grid)
    for column, (image, first, second) in enumerate(tiles):
        grid.paste(Image.fromarray(image).resize((TILE, TILE), Image.NEAREST), (column * TILE, 0))
        draw.text((column * TILE + 3, TILE + 2), first, fill="black")
        draw.text((column * TILE + 3, TILE + 14), second, fill="black")
    # The query apart from the answers: a red frame.
    draw.rectangle([0, 0, TILE - 1, TILE - 1], outline="red", width=2)
    with atomic_path(path) as tmp:
        grid.save(tmp, format="PNG")


def write_json(path, content):
    write_text(path, json.dumps(content, indent=1) + "\n")
