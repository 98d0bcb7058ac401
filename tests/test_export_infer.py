"""Export to a static model and inference with the Paddle Inference predictor: same outputs as the dynamic
model, the command line, and bad input."""
import json
import os
import pathlib

import numpy as np
import paddle
import pytest

from alignment.check import compare_codes
from alignment.tolerances import tolerance
from greedyhash_common.app.prediction import softmax
from greedyhash_common.data.dataset import load_data
from paddle_impl import export as export_module
from paddle_impl import infer
from paddle_impl.model import GreedyHash
from paddle_impl.weights import load_weights
from tests.tiny_runs import BIT, write_png, write_seeded_weights, write_tiny_split

IMAGE_SIZE = 64


@pytest.fixture(scope="module")
def exported(module_tmp):
    folder = module_tmp("export")
    split_file = write_tiny_split(folder / "split.npz")
    _, weights = write_seeded_weights(str(folder))
    model_dir = folder / "model"
    export_module.main(["--checkpoint", weights, "--bit", str(BIT), "--image-size", str(IMAGE_SIZE),
                        "--output-dir", str(model_dir)])
    images, _ = load_data(None, split_file).subset("query")
    return {"weights": weights, "model_dir": str(model_dir), "images": images, "split": split_file, "folder": folder}


def dynamic_outputs(weights, batch):
    """(class probabilities, codes, h) of the dynamic graph."""
    model = GreedyHash(BIT)
    load_weights(model, weights)
    model.eval()
    with paddle.no_grad():
        logits, h, codes = model(paddle.to_tensor(batch))
    return softmax(logits.numpy()), codes.numpy(), h.numpy()


@pytest.mark.slow
def test_the_predictor_gives_the_dynamic_models_outputs(exported):
    batch = infer.preprocess(exported["images"][:8], IMAGE_SIZE)
    predictor = infer.create_predictor(exported["model_dir"], "cpu", threads=2)
    probabilities, codes, h = infer.run_predictor(predictor, batch, exported["model_dir"])
    expected_probabilities, expected_codes, expected_h = dynamic_outputs(exported["weights"], batch)
    np.testing.assert_allclose(h, expected_h, rtol=0, atol=tolerance("forward", "float32", "h").limit(
        float(np.abs(expected_h).max())))
    assert compare_codes("codes", expected_codes, codes, expected_h, tolerance("forward", "float32", "h")).passed
    np.testing.assert_allclose(probabilities, expected_probabilities, rtol=1e-5, atol=1e-7)
    assert probabilities.shape == (8, 10) and codes.shape == (8, BIT)


def test_the_export_folder_holds_the_model_and_its_metadata(exported):
    files = set(os.listdir(exported["model_dir"]))
    assert {"model.pdiparams", "export.json"} <= files and files & {"model.json", "model.pdmodel"}
    metadata = json.loads(open(os.path.join(exported["model_dir"], "export.json")).read())
    assert metadata["bit"] == BIT and metadata["image_size"] == IMAGE_SIZE and len(metadata["class_names"]) == 10


def test_infer_prints_class_probability_and_code_of_an_image_file(exported, tmp_path, capsys):
    image = write_png(tmp_path / "query.png", exported["images"][5])
    infer.main(["--model-dir", exported["model_dir"], "--image", image, "--device", "cpu", "--json",
                str(tmp_path / "result.json")])
    result = json.loads((tmp_path / "result.json").read_text())
    probabilities, codes, _ = dynamic_outputs(exported["weights"],
                                              infer.preprocess(exported["images"][5:6], IMAGE_SIZE))
    assert result["class"] == int(probabilities.argmax())
    assert abs(result["probability"] - float(probabilities.max())) < 1e-6
    assert result["code"] == "".join("1" if value > 0 else "0" for value in codes[0])
    assert f"code: {result['code']}" in capsys.readouterr().out


@pytest.mark.parametrize("problem, message", [
    ("missing folder", "no exported model here"),
    ("missing parameters", "the exported model files"),
    ("not an image", "not an image Pillow can read"),
    ("gpu", "sees no GPU"),
])
def test_bad_inference_input_gives_a_clear_message(problem, message, exported, tmp_path, capsys):
    model_dir, image = exported["model_dir"], write_png(tmp_path / "query.png", exported["images"][0])
    extra = []
    if problem == "missing folder":
        model_dir = str(tmp_path / "nothing")
    elif problem == "missing parameters":
        model_dir = str(tmp_path / "partial")
        os.mkdir(model_dir)
        os.link(os.path.join(exported["model_dir"], "export.json"), os.path.join(model_dir, "export.json"))
    elif problem == "not an image":
        image = str(tmp_path / "notes.txt")
        open(image, "w").write("not an image")
    else:
        extra = ["--device", "gpu"]
    with pytest.raises(SystemExit) as stopped:
        infer.main(["--model-dir", model_dir, "--image", image, *extra])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_export_replaces_a_previous_export_whole(exported, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "stale.txt").write_text("from an earlier export")
    export_module.main(["--checkpoint", exported["weights"], "--bit", str(BIT), "--image-size", str(IMAGE_SIZE),
                        "--output-dir", str(model_dir)])
    assert not (model_dir / "stale.txt").exists() and (model_dir / "model.pdiparams").exists()
    assert [name for name in os.listdir(tmp_path) if name.startswith(".")] == []


def test_export_refuses_weights_of_another_bit_length(exported, tmp_path, capsys):
    with pytest.raises(SystemExit):
        export_module.main(["--checkpoint", exported["weights"], "--bit", "48", "--output-dir", str(tmp_path / "m")])
    assert "weights for 12-bit codes, the model has 48 bits" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def damaged_export(exported, folder, damage):
    """A copy of the export (files hard-linked) with one file replaced by `damage(name, its bytes)`."""
    os.mkdir(folder)
    for name in os.listdir(exported["model_dir"]):
        source, target = os.path.join(exported["model_dir"], name), os.path.join(folder, name)
        replaced = damage(name, source)
        if replaced is None:
            os.link(source, target)
        else:
            with open(target, "wb") as handle:
                handle.write(replaced)
    return str(folder)


def _first_megabyte(path):
    with open(path, "rb") as handle:
        return handle.read(2 ** 20)


EXPORT_DAMAGES = {
    "truncated parameters": (lambda name, path: _first_megabyte(path) if name.endswith(".pdiparams") else None,
                             "the predictor cannot load this model"),
    "a program that is not JSON": (lambda name, path: b'{"base_code": {' if name == "model.json" else None,
                                   "the predictor cannot load this model"),
    "a float32 tensor declared float64": (
        lambda name, path: pathlib.Path(path).read_bytes().replace(b'"0.t_f32"', b'"0.t_f64"', 1)
        if name == "model.json" else None, "the predictor cannot run this model"),
}

PROGRAM_DAMAGES = ("a program that is not JSON", "a float32 tensor declared float64")  # of Paddle 3's model.json


@pytest.mark.parametrize("damage", sorted(EXPORT_DAMAGES))
def test_a_damaged_export_is_refused_in_one_line(damage, exported, tmp_path, capsys):
    if damage in PROGRAM_DAMAGES and not os.path.isfile(os.path.join(exported["model_dir"], "model.json")):
        pytest.skip("Paddle 2.x writes a protobuf program (model.pdmodel)")
    change, message = EXPORT_DAMAGES[damage]
    model_dir = damaged_export(exported, tmp_path / "damaged", change)
    image = write_png(tmp_path / "query.png", exported["images"][0])
    with pytest.raises(SystemExit) as stopped:
        infer.main(["--model-dir", model_dir, "--image", image, "--device", "cpu"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2 and len(lines) == 1 and message in lines[0], lines
