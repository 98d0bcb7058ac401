"""`--weight-sets user` (the checkpoint given with --weights) is a weight set of every pair."""
import pytest

from alignment.suite import get_args_parser, resolved_options, with_user_weights
from greedyhash_common.infra.errors import UserInputError

from .conftest import run_module


@pytest.mark.parametrize("model", ["greedyhash", "resnet18", "resnet18-torch-bn"])
def test_the_user_set_is_a_weight_set_of_every_pair(model, tmp_path):
    (tmp_path / "model.pth").write_bytes(b"read when the run prepares its weights")
    args, _ = resolved_options(get_args_parser().parse_args(
        ["--model", model, "--weight-sets", "user", "--weights", str(tmp_path / "model.pth")]))
    args = with_user_weights(args)
    assert args.weight_sets == "user"
    with pytest.raises(UserInputError, match="--weight-sets user: give the checkpoint with --weights"):
        resolved_options(get_args_parser().parse_args(["--model", model, "--weight-sets", "seeded,user"]))


@pytest.mark.slow
def test_a_users_resnet18_checkpoint_is_checked_alone(tmp_path):
    """About a minute: ResNet-18's forward step in float64 at 64 px, on a checkpoint torchvision wrote."""
    import torch
    import torchvision

    torch.manual_seed(3)
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), tmp_path / "mine.pth")
    done = run_module("alignment", "--model", "resnet18", "--steps", "forward", "--dtypes", "float64", "--sizes", 64,
                      "--weight-sets", "user", "--weights", tmp_path / "mine.pth", "--no-profile",
                      "--workdir", tmp_path / "logs")
    assert "forward    user-64px" in done.stdout, done.stdout + done.stderr
    assert "BatchNorm running variance" in done.stdout  # the library difference, named, at the user's weights
