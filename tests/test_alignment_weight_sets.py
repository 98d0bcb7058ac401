"""`--weight-sets user` (the checkpoint given with --weights) is a weight set of every pair."""
import numpy as np
import pytest

from alignment.suite import get_args_parser, resolved_options, with_user_weights
from alignment.weight_sets import BELOW_FLOAT32_SHARE, below_float32
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


def _rescaled_a_pass_per_layer(model, batch):
    """The rescaling as its definition reads: for each layer in turn, a whole pass of the network rescaled so
    far, the layer's output measured, its weight and bias scaled."""
    import torch

    from alignment.pairs.greedyhash.weight_sets import target_std

    factors = {}
    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            seen = []
            handle = module.register_forward_hook(lambda _, __, output: seen.append(output.std().item()))
            with torch.no_grad():
                model(batch)
            handle.remove()
            factors[name] = target_std(name) / seen[0]
            with torch.no_grad():
                module.weight.mul_(factors[name])
                if module.bias is not None:
                    module.bias.mul_(factors[name])
    return factors


def test_the_one_pass_rescaling_gives_a_pass_per_layers_weights_bit_for_bit():
    """The rescaling (alignment.pairs.rescaling.rescale) measures every layer in one pass: its factors and
    weights are those of a pass per layer, to the bit (a layer whose rescaled output did not reach the next
    ones would change every factor after it)."""
    import copy

    import numpy as np
    import torch

    from alignment.pairs.greedyhash.weight_makers import seeded_model
    from alignment.pairs.greedyhash.weight_sets import target_std
    from alignment.pairs.rescaling import rescale

    images = np.random.default_rng(0).standard_normal((2, 3, 64, 64))
    model = seeded_model(12, 0).double()
    expected_model = copy.deepcopy(model).eval()
    factors = rescale(model, images, target_std, (torch.nn.Conv2d, torch.nn.Linear))
    expected = _rescaled_a_pass_per_layer(expected_model, torch.from_numpy(images))
    assert factors == expected
    assert len(factors) == 9  # five convolutions, two classifier layers, the hash layer, the class scores
    for (name, value), (_, expected_value) in zip(model.state_dict().items(), expected_model.state_dict().items()):
        assert torch.equal(value, expected_value), name


def test_a_made_set_holds_values_below_float32_whose_float32_rounding_is_the_set_made():
    """The float32 checks read exactly the values made (at powers of two too, where the spacing below is half
    the one above), the float64 checks other bits; what is not float32 is left as it is."""
    made = np.concatenate([np.random.default_rng(0).standard_normal(10000), [1, -2, 0.5, 4, 3e38]]).astype(np.float32)
    state = below_float32({"w": made, "float64": made.astype(np.float64), "count": np.array(3)}, seed=0)
    assert state["w"].dtype == np.float64 and np.array_equal(state["w"].astype(np.float32), made)
    assert np.all(state["w"] != made)
    assert np.max(np.abs(state["w"] - made) / np.spacing(np.abs(made))) > BELOW_FLOAT32_SHARE / 2
    assert np.array_equal(state["float64"], made) and state["count"].dtype == np.array(3).dtype



@pytest.mark.parametrize("model", ["resnet18", "resnet18-torch-bn"])
def test_the_rescaled_set_is_proposed_to_a_pair_without_one_and_only_known_sets_are_taken(model):
    args, pair = resolved_options(get_args_parser().parse_args(["--model", model, "--weight-sets", "seeded,rescaled"]))
    assert args.weight_sets == "seeded,rescaled" and "rescaled" not in pair.WEIGHT_SETS
    with pytest.raises(UserInputError, match="unknown weight sets trained; choose from seeded, rescaled, user"):
        resolved_options(get_args_parser().parse_args(["--model", model, "--weight-sets", "seeded,trained"]))
