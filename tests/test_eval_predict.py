"""Evaluation and prediction on both sides: results, agreement of the two frameworks, and bad input."""
import importlib
import json

import pytest

from greedyhash_common.data.dataset import load_data
from tests.tiny_runs import BIT, FRAMEWORKS, write_png, write_seeded_weights, write_tiny_split

WEIGHTS_INDEX = {"torch": 0, "paddle": 1}


@pytest.fixture(scope="module")
def files(module_tmp):
    folder = module_tmp("eval-predict")
    split_file = write_tiny_split(folder / "split.npz")
    query_images, _ = load_data(None, split_file).subset("query")
    return {"split": split_file, "weights": write_seeded_weights(str(folder)), "folder": folder,
            "png": write_png(folder / "query.png", query_images[3]), "not_png": str(folder / "notes.png")}


def common_options(files, framework):
    return ["--checkpoint", files["weights"][WEIGHTS_INDEX[framework]], "--bit", BIT, "--split-file", files["split"],
            "--image-size", 64, "--threads", 2]


def run_main(module_name, argv):
    module = importlib.import_module(module_name)
    module.main([str(argument) for argument in argv])


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_eval_reports_map_and_accuracy_in_both_tie_modes(framework, files, tmp_path):
    results = {}
    for ties in ("index", "expected"):
        run_main(f"{framework}_impl.eval", [*common_options(files, framework), "--ties", ties, "--deterministic",
                                            "--json", tmp_path / f"{ties}.json"])
        results[ties] = json.loads((tmp_path / f"{ties}.json").read_text())
    for result in results.values():
        assert 0 <= result["map"] <= 1 and 0 <= result["query_accuracy"] <= 1
        assert result["protocol"] == "cifar10-2" and result["query_images"] == 20 and result["bit"] == BIT
    assert results["index"]["query_accuracy"] == results["expected"]["query_accuracy"]


@pytest.mark.slow
def test_both_frameworks_and_both_paddle_engines_score_the_same(files, tmp_path):
    """torch's evaluation, Paddle's on its dynamic graph and on the Paddle Inference predictor (the default)."""
    results = {}
    for name, module, extra in (("torch", "torch_impl.eval", []), ("dynamic", "paddle_impl.eval", ["--engine", "dynamic"]),
                                ("predictor", "paddle_impl.eval", [])):
        framework = module.split("_")[0]
        run_main(module, [*common_options(files, framework), *extra, "--json", tmp_path / f"{name}.json"])
        results[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert results["dynamic"]["engine"] == "dynamic" and results["predictor"]["engine"] == "predictor"
    for name in ("dynamic", "predictor"):
        assert results[name]["map"] == pytest.approx(results["torch"]["map"], abs=1e-9), name
        assert results[name]["query_accuracy"] == results["torch"]["query_accuracy"], name


def test_both_frameworks_predict_the_same_class_code_and_neighbours(files, tmp_path):
    """The same weights (converted) on the same image: the port agrees with the reference end to end."""
    results = {}
    for framework in FRAMEWORKS:
        run_main(f"{framework}_impl.predict", [*common_options(files, framework), "--image", files["png"],
                                               "--top-k", 5, "--output", tmp_path / f"{framework}.png",
                                               "--json", tmp_path / f"{framework}.json"])
        results[framework] = json.loads((tmp_path / f"{framework}.json").read_text())
    torch_result, paddle_result = results["torch"], results["paddle"]
    assert torch_result["code"] == paddle_result["code"] and len(torch_result["code"]) == BIT
    assert torch_result["class"] == paddle_result["class"]
    assert abs(torch_result["probability"] - paddle_result["probability"]) < 1e-5
    assert torch_result["neighbours"] == paddle_result["neighbours"] and len(torch_result["neighbours"]) == 5
    from PIL import Image
    with Image.open(tmp_path / "paddle.png") as grid:
        assert grid.format == "PNG" and grid.width == 6 * 96


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_predict_by_query_index_reports_the_true_class(framework, files, tmp_path, capsys):
    run_main(f"{framework}_impl.predict", [*common_options(files, framework), "--index", 3,
                                           "--output", tmp_path / "grid.png"])
    output = capsys.readouterr().out
    assert "image: query image 3" in output and "true class:" in output and "distance" in output


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("tool, change, message", [
    ("eval", {"--bit": 48}, "weights for 12-bit codes, the model has 48 bits"),
    ("eval", {"--checkpoint": "CORRUPT"}, "corrupt-checkpoint: not a readable"),
    ("eval", {"--checkpoint": "/nonexistent/best"}, "/nonexistent/best: no such checkpoint; train one first"),
    ("eval", {"--data": "/nonexistent/cifar"}, "/nonexistent/cifar: no such file or folder"),
    ("eval", {"--device": "gpu"}, "sees no GPU"),
    ("predict", {"--image": "NOT_PNG"}, "not an image Pillow can read"),
    ("predict", {"--image": "/nonexistent/photo.png"}, "/nonexistent/photo.png: no such image file"),
    ("predict", {"--index": 20}, "--index 20: the split has 20 query images (0..19)"),
])
def test_bad_input_gives_a_clear_message(framework, tool, change, message, files, tmp_path, capsys):
    corrupt = tmp_path / "corrupt-checkpoint"
    corrupt.write_bytes(b"garbage" * 100)
    (files["folder"] / "notes.png").write_text("these are notes, not an image\n")
    replacements = {"CORRUPT": str(corrupt), "NOT_PNG": files["not_png"]}
    argv = [str(value) for value in common_options(files, framework)]
    for option, value in change.items():
        value = replacements.get(value, str(value))
        if option in argv:
            argv[argv.index(option) + 1] = value
        else:
            argv += [option, value]
    if tool == "predict" and "--image" not in argv and "--index" not in argv:
        argv += ["--index", "0"]
    with pytest.raises(SystemExit) as stopped:
        run_main(f"{framework}_impl.{tool}", [*argv, "--output", tmp_path / "grid.png"] if tool == "predict" else argv)
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert replacements.get(message, message) in error
    assert not (tmp_path / "grid.png").exists()


@pytest.mark.slow
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_eval_reads_a_training_checkpoint_and_refuses_one_of_another_bit_length(framework, files, tmp_path, capsys):
    """A training checkpoint (last.*) evaluates like the weights it holds."""
    checkpoint_module = importlib.import_module(f"{framework}_impl.checkpoint")
    model_module = importlib.import_module(f"{framework}_impl.model")
    optim_module = importlib.import_module(f"{framework}_impl.optim")
    weights_module = importlib.import_module(f"{framework}_impl.weights")
    model = model_module.GreedyHash(BIT)
    weights_module.load_weights(model, files["weights"][WEIGHTS_INDEX[framework]])
    optimizer, scheduler = optim_module.build_optimizer(model)
    checkpoint = tmp_path / ("last.pth" if framework == "torch" else "last.pdstate")
    checkpoint_module.save_checkpoint(str(checkpoint), model, optimizer, scheduler, 0, {"bit": BIT}, None, [],
                                      [checkpoint_module.rng_state()])
    results = []
    for path in (files["weights"][WEIGHTS_INDEX[framework]], checkpoint):
        run_main(f"{framework}_impl.eval", [*common_options(files, framework)[2:], "--checkpoint", path,
                                            "--json", tmp_path / "result.json"])
        results.append(json.loads((tmp_path / "result.json").read_text())["map"])
    assert results[0] == results[1]
    with pytest.raises(SystemExit):
        run_main(f"{framework}_impl.eval", [*common_options(files, framework)[2:], "--checkpoint", checkpoint,
                                            "--bit", 48])
    assert "12-bit codes, the model has 48 bits" in capsys.readouterr().err


def test_the_paddle_side_names_a_torch_checkpoint_and_how_to_convert_it(files, capsys):
    with pytest.raises(SystemExit):
        run_main("paddle_impl.eval", [*common_options(files, "torch")])
    assert "a torch checkpoint, not a Paddle one; convert its weights with python -m weights_convert" in \
        capsys.readouterr().err
