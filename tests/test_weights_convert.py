"""The converter: exact round trip, strictness, and bad input (clear message, exit 2, nothing written)."""
import os
import pickle
import re

import numpy as np
import paddle
import pytest
import torch
import torchvision

from greedyhash_common.infra.errors import UserInputError
from greedyhash_common.state_dicts.paddle_files import read_paddle_state
from paddle_impl.model import GreedyHash as PaddleGreedyHash
from paddle_impl.weights import load_backbone as paddle_load_backbone
from paddle_impl.weights import load_weights as paddle_load_weights
from torch_impl.model import GreedyHash as TorchGreedyHash
from torch_impl.torch_files import read_torch_state, write_torch_state
from torch_impl.weights import load_backbone as torch_load_backbone
from torch_impl.weights import load_weights as torch_load_weights
from weights_convert.__main__ import main as convert_main

from .conftest import BIT, run_module


def convert(direction, source, target):
    """The real command line, in a child process."""
    return run_module("weights_convert", direction, source, target)


def convert_in_process(direction, source, target, capsys):
    """The same entry point without a child process: (exit status, stdout, stderr)."""
    try:
        convert_main([direction, str(source), str(target)])
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.slow
def test_torch_paddle_torch_round_trip_is_bit_identical(weights, tmp_path):
    torch_file, _ = weights
    middle, back = tmp_path / "model.pdparams", tmp_path / "back.pth"
    assert convert("torch2paddle", torch_file, middle).returncode == 0
    assert convert("paddle2torch", middle, back).returncode == 0
    original, returned = torch.load(torch_file, weights_only=True), torch.load(back, weights_only=True)
    assert list(original) == list(returned)
    for key in original:
        assert original[key].dtype == returned[key].dtype
        assert original[key].numpy().tobytes() == returned[key].numpy().tobytes(), key


def round_trip_changes(torch_file, tmp_path, capsys):
    """{key: what changed} after torch2paddle then paddle2torch of `torch_file`: dtype or any bit."""
    middle, back = tmp_path / "model.pdparams", tmp_path / "back.pth"
    assert convert_in_process("torch2paddle", torch_file, middle, capsys)[0] == 0
    assert convert_in_process("paddle2torch", middle, back, capsys)[0] == 0
    original, returned = read_torch_state(torch_file), read_torch_state(back)
    return {key: f"{value.dtype} -> {returned[key].dtype}" if value.dtype != returned[key].dtype else "values"
            for key, value in original.items()
            if value.dtype != returned[key].dtype or value.tobytes() != returned[key].tobytes()}


def test_a_float64_checkpoint_round_trips_bit_for_bit(weights, tmp_path, capsys):
    """The suite's seeded set: float64 values no float32 holds (alignment.weight_sets.below_float32)."""
    assert {value.dtype for value in read_torch_state(weights[0]).values()} == {np.dtype(np.float64)}
    assert round_trip_changes(weights[0], tmp_path, capsys) == {}


def test_a_converter_that_casts_to_float32_is_caught_by_the_float64_round_trip(weights, tmp_path, capsys,
                                                                                monkeypatch):
    """The planted defect: every array cast to float32 on its way, every key of the seeded set changed."""
    import weights_convert.convert as convert_module

    converted = convert_module.converted_array
    monkeypatch.setattr(convert_module, "converted_array",
                        lambda array, transpose: converted(array, transpose).astype(np.float32))
    changes = round_trip_changes(weights[0], tmp_path, capsys)
    assert changes["fc_plus.weight"] == "float64 -> float32" and len(changes) == len(read_torch_state(weights[0]))


def test_paddle_load_reads_the_converted_file(weights):
    _, paddle_file = weights
    loaded = paddle.load(paddle_file)
    model = PaddleGreedyHash(BIT)
    model.to(dtype="float64")  # the set's precision: Paddle's set_state_dict does not cast
    assert set(loaded) == set(model.state_dict())
    model.set_state_dict(loaded)
    np.testing.assert_array_equal(model.fc_plus.weight.numpy(), read_paddle_state(paddle_file)["fc_plus.weight"])


def test_linear_weights_are_transposed_and_convolutions_are_not(weights):
    torch_state, paddle_state = read_torch_state(weights[0]), read_paddle_state(weights[1])
    np.testing.assert_array_equal(paddle_state["alex.classifier.4.weight"], torch_state["alex.classifier.4.weight"].T)
    np.testing.assert_array_equal(paddle_state["alex.features.0.weight"], torch_state["alex.features.0.weight"])


@pytest.fixture
def torchvision_checkpoint(tmp_path):
    """A stand-in for alexnet-owt-7be5be79.pth: torchvision's own AlexNet state dict, seeded."""
    torch.manual_seed(3)
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return path


@pytest.mark.slow
def test_torchvision_alexnet_checkpoint_becomes_a_paddle_backbone(torchvision_checkpoint, tmp_path):
    target = tmp_path / "alexnet_backbone.pdparams"
    done = convert("torch2paddle", torchvision_checkpoint, target)
    assert done.returncode == 0, done.stderr
    assert "classifier.6.weight" in done.stdout and "keep the model's own initialization" in done.stdout
    torch_model, paddle_model = TorchGreedyHash(BIT), PaddleGreedyHash(BIT)
    torch_load_backbone(torch_model, str(torchvision_checkpoint))
    paddle_load_backbone(paddle_model, str(target))
    np.testing.assert_array_equal(paddle_model.alex.classifier[4].weight.numpy(),
                                  torch_model.alex.classifier[4].weight.detach().numpy().T)
    images = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype("float32")
    torch_model.eval(), paddle_model.eval()
    with torch.no_grad():
        torch_features = torch_model.alex(torch.from_numpy(images)).numpy()
    paddle_features = paddle_model.alex.classifier(
        paddle.flatten(paddle_model.alex.avgpool(paddle_model.alex.features(paddle.to_tensor(images))), 1)).numpy()
    np.testing.assert_allclose(paddle_features, torch_features, rtol=1e-4, atol=1e-6)


def test_missing_backbone_file_names_what_to_supply(tmp_path):
    for load, model in ((torch_load_backbone, TorchGreedyHash(BIT)), (paddle_load_backbone, PaddleGreedyHash(BIT))):
        with pytest.raises(UserInputError, match="alexnet-owt-7be5be79.pth.*cannot be downloaded|cannot be downloaded"):
            load(model, str(tmp_path / "absent.pth"))


def test_weights_for_another_bit_length_are_refused(weights):
    with pytest.raises(UserInputError, match="48-bit codes, the model has 32 bits"):
        torch_load_weights(TorchGreedyHash(32), weights[0])
    with pytest.raises(UserInputError, match="48-bit codes, the model has 32 bits"):
        paddle_load_weights(PaddleGreedyHash(32), weights[1])


def _edited_torch_checkpoint(source, target, edit):
    state = torch.load(source, weights_only=True)
    edit(state)
    torch.save(state, target)


BAD_TORCH_CHECKPOINTS = {
    "missing key": (lambda state: state.pop("alex.features.3.bias"), "missing keys.*alex.features.3.bias"),
    "extra key": (lambda state: state.__setitem__("fc.bias", torch.zeros(10)), "unexpected keys.*fc.bias"),
    "wrong shape": (lambda state: state.__setitem__("alex.features.0.bias", torch.zeros(65)),
                    r"wrong shapes.*alex.features.0.bias: \(65,\) instead of \(64,\)"),
}


@pytest.mark.parametrize("defect", list(BAD_TORCH_CHECKPOINTS))
def test_bad_torch_checkpoint_is_refused_and_nothing_written(defect, weights, tmp_path, capsys):
    edit, message = BAD_TORCH_CHECKPOINTS[defect]
    source, target = tmp_path / "bad.pth", tmp_path / "out.pdparams"
    _edited_torch_checkpoint(weights[0], source, edit)
    status, _, err = convert_in_process("torch2paddle", source, target, capsys)
    assert status == 2
    assert re.search(message, err, flags=re.DOTALL), err
    assert not target.exists() and os.listdir(tmp_path) == ["bad.pth"]


def test_command_line_reports_bad_input_without_a_traceback(weights, tmp_path):
    source, target = tmp_path / "bad.pth", tmp_path / "out.pdparams"
    _edited_torch_checkpoint(weights[0], source, BAD_TORCH_CHECKPOINTS["missing key"][0])
    done = convert("torch2paddle", source, target)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: ") and "alex.features.3.bias" in done.stderr
    assert not target.exists()


def _write(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("direction,name,content,message", [
    ("torch2paddle", "truncated.pth", "truncate", "not a readable torch checkpoint"),
    ("torch2paddle", "notes.pth", b"just some text\n", "not a readable torch checkpoint"),
    ("paddle2torch", "truncated.pdparams", "truncate", "not a readable pickle of numpy arrays"),
    ("paddle2torch", "notes.pdparams", b"just some text\n", "not a readable pickle of numpy arrays"),
    ("paddle2torch", "evil.pdparams", pickle.dumps({"fc.weight": os.system}), "os.system|posix.system"),
    ("torch2paddle", "absent.pth", None, "no such file"),
])
def test_unreadable_files_are_refused(direction, name, content, message, weights, tmp_path, capsys):
    source = tmp_path / name
    if content == "truncate":
        original = open(weights[0] if direction == "torch2paddle" else weights[1], "rb").read()
        _write(source, original[: len(original) // 2])
    elif content is not None:
        _write(source, content)
    target = tmp_path / ("out.pdparams" if direction == "torch2paddle" else "out.pth")
    status, _, err = convert_in_process(direction, source, target, capsys)
    assert status == 2 and re.search(message, err), err
    assert not target.exists()
