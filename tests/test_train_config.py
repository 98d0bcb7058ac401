"""The training configuration: YAML files agree with hyperparameters.py, precedence, resume rules, bad files."""
import pytest

from greedyhash_common import hyperparameters as reference
from greedyhash_common.app.train_config import (REFERENCE_KEYS, get_args_parser, load_yaml_config,
                                                reference_config_path, resolve_config)
from greedyhash_common.data.split import DEFAULT_PROTOCOL
from greedyhash_common.infra.errors import UserInputError

EXPECTED = {"protocol": DEFAULT_PROTOCOL, "epochs": reference.EPOCHS, "batch_size": reference.BATCH_SIZE,
            "lr": reference.LEARNING_RATE, "lr_decay_every": reference.LR_DECAY_EVERY_EPOCHS,
            "alpha": reference.QUANTIZATION_WEIGHT, "seed": reference.SEED, "image_size": reference.IMAGE_SIZE,
            "eval_every": 1}


def resolve(argv, saved=None, resumed_from=None):
    parser = get_args_parser("torch")
    return resolve_config(vars(parser.parse_args(argv)), "torch", parser, saved=saved, resumed_from=resumed_from)


@pytest.mark.parametrize("bit", reference.BITS)
def test_yaml_files_hold_the_reference_values(bit):
    values = load_yaml_config(reference_config_path(bit), get_args_parser("paddle"))
    assert set(values) == set(REFERENCE_KEYS)
    assert values == {**EXPECTED, "bit": bit}


def test_command_line_overrides_yaml_which_overrides_defaults(tmp_path):
    config = resolve(["--bit", "12", "--lr", "0.01", "--output-dir", str(tmp_path)])
    assert config["bit"] == 12 and config["lr"] == 0.01 and config["epochs"] == reference.EPOCHS
    assert config["num_workers"] == 0 and config["threads"] >= 1
    assert config["split_file"] == str(tmp_path / "split.npz")


def test_a_custom_yaml_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("bit: 24\nepochs: 3\n")
    config = resolve(["--config", str(path), "--output-dir", str(tmp_path)])
    assert config["bit"] == 24 and config["epochs"] == 3 and config["lr"] == reference.LEARNING_RATE


@pytest.mark.parametrize("text, message", [
    ("epochs: -1\n", "epochs: must be a positive integer"),
    ("bit: 16\n", "bit: must be one of"),
    ("learning_rate: 0.1\n", "unknown keys learning_rate"),
    ("protocol: cifar100\n", "protocol: must be one of"),
    ("- a list\n", "expected a mapping"),
    ("epochs: [unclosed\n", "not valid YAML"),
])
def test_bad_yaml_files_are_refused_clearly(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserInputError, match=message):
        resolve(["--config", str(path)])


def test_a_missing_yaml_file(tmp_path):
    with pytest.raises(UserInputError, match="cannot read the configuration"):
        resolve(["--config", str(tmp_path / "absent.yaml")])


def test_resume_keeps_the_saved_configuration_and_accepts_only_harmless_changes(tmp_path):
    saved = resolve(["--bit", "12", "--output-dir", str(tmp_path)])
    checkpoint = str(tmp_path / "last.pth")
    resumed = resolve(["--resume", checkpoint, "--epochs", "60", "--threads", "1"], saved, checkpoint)
    assert resumed["epochs"] == 60 and resumed["threads"] == 1 and resumed["bit"] == 12
    assert resumed["output_dir"] == str(tmp_path)
    with pytest.raises(UserInputError, match="--lr, --seed"):
        resolve(["--resume", checkpoint, "--lr", "0.5", "--seed", "1"], saved, checkpoint)
