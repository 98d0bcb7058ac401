"""The training configuration of both frameworks: one parser, the YAML file per bit length, the rules
that combine them, and the resolved configuration saved beside the checkpoints.

Precedence, lowest first: the run options' defaults, the reference file configs/bit<BIT>.yaml, a file
given with --config (any subset of the same keys), the command line. A resumed run starts from the
configuration saved in its checkpoint instead; on the command line it accepts only the options that
cannot change its trajectory.
"""
import argparse
import os

import yaml

from ..infra.atomic import write_text
from ..infra.errors import OneLineArgumentParser, UserInputError
from ..project import PROJECT_ROOT
from .cli_options import (DEFAULT_BIT, RUN_CONFIG_NAME, RUN_SPLIT_NAME, add_data_options, add_runtime_options,
                          bit_length, default_run_dir, default_threads, non_negative_float, non_negative_int,
                          positive_float, positive_int)

CONFIG_DIR = PROJECT_ROOT / "configs"

# What configs/bit<BIT>.yaml may set: the reference values of the method and the protocol.
REFERENCE_KEYS = ("bit", "protocol", "epochs", "batch_size", "lr", "lr_decay_every", "alpha", "seed", "image_size",
                  "eval_every")
RUN_DEFAULTS = {"data": None, "split_file": None, "pretrained": None, "output_dir": None, "device": None,
                "threads": None, "num_workers": 0, "deterministic": False}
# A resumed run may change these; any other option would make it a different run than the one it continues.
# --data may change (the data moved): the split file refuses other data by its digest.
CHANGEABLE_ON_RESUME = ("epochs", "eval_every", "data", "output_dir", "device", "threads", "num_workers",
                        "deterministic")
MACHINE_KEYS = ("device", "threads", "num_workers")
PATH_KEYS = ("data", "split_file", "pretrained", "output_dir")


def get_args_parser(framework):
    """The training options of `python -m <framework>_impl.train`; both frameworks use this parser.

    Options left out are absent from the parsed namespace (not filled with defaults): that is how the
    YAML file and a resumed checkpoint know which values the command line overrides."""
    parser = OneLineArgumentParser(
        prog=f"python -m {framework}_impl.train", argument_default=argparse.SUPPRESS,
        description="Train GreedyHash (AlexNet, hash layer, sign codes with a straight-through gradient). "
                    "Reference values come from configs/bit<BIT>.yaml; options given here override them.")
    method = parser.add_argument_group("method (defaults: configs/bit<BIT>.yaml)")
    method.add_argument("--bit", type=bit_length, help=f"code length: 12, 24, 32 or 48 (default {DEFAULT_BIT})")
    method.add_argument("--config", metavar="YAML", help="a configuration file whose values replace those of "
                        "configs/bit<BIT>.yaml (any subset of its keys)")
    method.add_argument("--epochs", type=positive_int)
    method.add_argument("--batch-size", type=positive_int, help="the global batch size, over all processes")
    method.add_argument("--lr", type=positive_float, help="base learning rate")
    method.add_argument("--lr-decay-every", type=positive_int, metavar="EPOCHS",
                        help="the learning rate is multiplied by 0.1 every this many epochs")
    method.add_argument("--alpha", type=non_negative_float, help="weight of the quantization loss")
    method.add_argument("--seed", type=non_negative_int,
                        help="seeds the split, the batch order, the initialization and dropout")
    method.add_argument("--eval-every", type=positive_int, metavar="K",
                        help="evaluate mAP every K epochs (and after the last)")
    add_data_options(parser)
    run = parser.add_argument_group("run")
    run.add_argument("--pretrained", metavar="FILE",
                     help="ImageNet AlexNet backbone: torchvision's alexnet-owt-7be5be79.pth for torch, its "
                          "conversion to .pdparams for Paddle (default: random initialization)")
    run.add_argument("--output-dir", metavar="DIR",
                     help=f"checkpoints, configuration and history (default {default_run_dir(framework, 'BIT')})")
    run.add_argument("--resume", nargs="?", const="", metavar="CHECKPOINT",
                     help="continue a run from its last checkpoint (a file, or the run's folder; "
                          "alone: the last checkpoint in --output-dir)")
    add_runtime_options(parser)
    return parser


def reference_config_path(bit):
    return CONFIG_DIR / f"bit{bit}.yaml"


def load_yaml_config(path, parser):
    """The values of a configuration file, each checked as the command line checks it."""
    try:
        with open(path, encoding="utf-8") as handle:
            content = yaml.safe_load(handle)
    except OSError as error:
        raise UserInputError(f"{path}: cannot read the configuration ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise UserInputError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(content, dict):
        raise UserInputError(f"{path}: expected a mapping of option names to values")
    unknown = sorted(set(content) - set(REFERENCE_KEYS))
    if unknown:
        raise UserInputError(f"{path}: unknown keys {', '.join(map(str, unknown))}; "
                             f"a configuration file sets {', '.join(REFERENCE_KEYS)}")
    actions = {action.dest: action for action in parser._actions}
    return {key: _checked_value(actions[key], value, path) for key, value in content.items()}


def _checked_value(action, value, path):
    try:
        checked = action.type(str(value)) if action.type else value
    except argparse.ArgumentTypeError as error:
        raise UserInputError(f"{path}: {action.dest}: {error}") from None
    if action.choices is not None and checked not in action.choices:
        raise UserInputError(f"{path}: {action.dest}: must be one of {', '.join(map(str, action.choices))}, "
                             f"got {value!r}")
    return checked


def resolve_config(given, framework, parser, saved=None, resumed_from=None):
    """The run's configuration from the options `given` on the command line (a dict) and, when
    resuming from the checkpoint `resumed_from`, the configuration `saved` in it."""
    options = {key: value for key, value in given.items() if key not in ("config", "resume")}
    if saved is not None:
        if "config" in given:
            raise UserInputError(f"--config {given['config']}: a resumed run keeps its configuration (the one "
                                 "saved in its checkpoint); start a new run (another --output-dir) to use this file")
        return _resumed_config(options, _checked_saved_config(saved, resumed_from, parser), resumed_from)
    custom = load_yaml_config(given["config"], parser) if "config" in given else {}
    reference_file = reference_config_path(options.get("bit", custom.get("bit", DEFAULT_BIT)))
    config = {**RUN_DEFAULTS, **load_yaml_config(reference_file, parser), **custom, **options}
    missing = sorted(set(REFERENCE_KEYS) - set(config))
    if missing:
        raise UserInputError(f"{reference_file}: missing {', '.join(missing)}")
    config["framework"] = framework
    config["config_file"] = os.path.abspath(given.get("config", reference_file))
    config["output_dir"] = config["output_dir"] or default_run_dir(framework, config["bit"])
    config["split_file"] = config["split_file"] or os.path.join(config["output_dir"], RUN_SPLIT_NAME)
    return _with_machine_defaults(_with_absolute_paths(config))


def _resumed_config(options, saved, resumed_from):
    options = _with_absolute_paths(options)
    changed = sorted(key for key, value in options.items()
                     if key not in CHANGEABLE_ON_RESUME and saved.get(key) != value)
    if changed:
        raise UserInputError(
            "a resumed run keeps its configuration; these options differ from the checkpoint's: "
            f"{', '.join(_option_names(changed))}. Only {', '.join(_option_names(CHANGEABLE_ON_RESUME))} "
            "may change; start a new run (another --output-dir) to change the others")
    # The machine may differ from the one the run started on: its settings are chosen anew.
    config = {**saved, **{key: RUN_DEFAULTS[key] for key in MACHINE_KEYS}, **options}
    run_dir = os.path.dirname(os.path.abspath(resumed_from))
    config["output_dir"] = options.get("output_dir") or run_dir
    if not os.path.isfile(config["split_file"]):  # the run's folder was moved or copied here
        config["split_file"] = os.path.join(run_dir, RUN_SPLIT_NAME)
    return _with_machine_defaults(_with_absolute_paths(config))


def _checked_saved_config(saved, path, parser):
    """The configuration a checkpoint holds, each value checked as the command line checks it: a crafted
    or damaged checkpoint is refused here, not halfway through a run."""
    missing = sorted(set(REFERENCE_KEYS + ("split_file",)) - set(saved))
    if missing:
        raise UserInputError(f"{path}: the checkpoint's configuration lacks {', '.join(missing)}")
    actions = {action.dest: action for action in parser._actions}
    checked = {key: _checked_value(actions[key], saved[key], path) for key in REFERENCE_KEYS}
    not_paths = [key for key in PATH_KEYS if not isinstance(saved.get(key), (str, type(None)))]
    if not_paths or not isinstance(saved["split_file"], str):
        raise UserInputError(f"{path}: the checkpoint's configuration holds a path that is not text: "
                             f"{', '.join(not_paths) or 'split_file'}")
    return {**saved, **checked}


def _option_names(keys):
    return ["--" + key.replace("_", "-") for key in keys]


def _with_absolute_paths(config):
    """Paths as absolute ones, so that eval, predict and --resume find them from any folder."""
    return {key: os.path.abspath(value) if key in PATH_KEYS and value is not None else value
            for key, value in config.items()}


def _with_machine_defaults(config):
    return {**config, "threads": config["threads"] or default_threads()}


def save_config(config, output_dir):
    """Write the resolved configuration as config.yaml in the run's folder (atomically)."""
    text = f"# The resolved configuration of this run (python -m {config['framework']}_impl.train).\n"
    write_text(os.path.join(output_dir, RUN_CONFIG_NAME), text + yaml.safe_dump(config, sort_keys=False))


def read_run_config(run_dir):
    """The configuration a training run saved in `run_dir`, or {} if there is none."""
    path = os.path.join(run_dir, RUN_CONFIG_NAME)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            content = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as error:
        raise UserInputError(f"{path}: not a readable run configuration ({error})") from None
    if not isinstance(content, dict):
        raise UserInputError(f"{path}: not a run configuration (expected a mapping)")
    return content
