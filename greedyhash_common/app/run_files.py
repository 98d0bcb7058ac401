"""The data a run trains and evaluates on, and the options that the tools reading a checkpoint (eval,
predict, export) take from the training run that wrote it when the user leaves them out."""
import contextlib
import os
import shutil
import tempfile

from ..data.dataset import load_data, write_split
from ..data.split import DEFAULT_PROTOCOL
from ..hyperparameters import BATCH_SIZE, IMAGE_SIZE, SEED
from ..infra.atomic import remove_temporary_files
from ..infra.errors import UserInputError
from ..infra.workdir_lock import holding_workdir
from .cli_options import (BEST_WEIGHTS_NAME, DEFAULT_BIT, LAST_CHECKPOINT_NAME, RUN_CONFIG_NAME, RUN_HISTORY_NAME,
                          RUN_SPLIT_NAME, default_run_dir, default_threads)
from .option_checks import check_image_size, check_output_dir, check_output_file
from .train_config import read_run_config

# Read from the run's config.yaml when the user does not give them.
INHERITED_FROM_RUN = ("bit", "data", "image_size", "seed", "batch_size")
TOOL_DEFAULTS = {"bit": DEFAULT_BIT, "data": None, "image_size": IMAGE_SIZE, "seed": SEED, "protocol": None,
                 "split_file": None, "batch_size": BATCH_SIZE, "device": None, "threads": None, "num_workers": 0,
                 "deterministic": False, "json": None}


def prepare_data(data, split_file, protocol, seed):
    """The data and its split: read from `split_file` if it exists (refused if drawn for another protocol or
    other data, or when not a regular file: a FIFO or device is never replaced), else drawn with `seed` and
    saved there."""
    if os.path.exists(split_file):
        prepared = load_data(data, split_file)
        if protocol is not None and prepared.split.protocol != protocol:
            raise UserInputError(f"{split_file}: a split of protocol {prepared.split.protocol}, not {protocol}; "
                                 "choose another --split-file or leave --protocol out")
        return prepared
    return write_split(data, split_file, protocol or DEFAULT_PROTOCOL, seed)


@contextlib.contextmanager
def tool_data(options):
    """prepare_data for a tool: its split file, or a split drawn into a temporary folder when it has none."""
    if options["split_file"] is not None:
        yield prepare_data(options["data"], options["split_file"], options["protocol"], options["seed"])
        return
    with tempfile.TemporaryDirectory(prefix="greedyhash-split-") as scratch:
        yield prepare_data(options["data"], os.path.join(scratch, RUN_SPLIT_NAME), options["protocol"],
                           options["seed"])


def checkpoint_tool_options(args, framework, **defaults):
    """The options of a tool that loads a checkpoint: those given, else the training run's (the
    config.yaml beside the checkpoint), else the defaults."""
    given = vars(args)
    checkpoint = given.get("checkpoint") or os.path.join(
        default_run_dir(framework, given.get("bit", DEFAULT_BIT)), BEST_WEIGHTS_NAME[framework])
    if not os.path.isfile(checkpoint):
        raise UserInputError(f"{checkpoint}: no such checkpoint; train one first (python -m {framework}_impl.train) "
                             "or pass --checkpoint")
    run = read_run_config(os.path.dirname(os.path.abspath(checkpoint)))
    options = {**TOOL_DEFAULTS, **defaults, **{key: run[key] for key in INHERITED_FROM_RUN if key in run}, **given}
    options["checkpoint"] = checkpoint
    if "split_file" not in given:
        options["split_file"] = _run_split_file(run, given.get("protocol"))
    options["threads"] = options["threads"] or default_threads()
    check_tool_options(options)
    return options


# The files a tool writes, by option: checked before the work, not after the whole evaluation has run.
TOOL_OUTPUT_FILE_OPTIONS = {"json": "--json", "output": "--output"}


def check_tool_options(options):
    check_image_size(options["image_size"])
    for key, option in TOOL_OUTPUT_FILE_OPTIONS.items():
        if options.get(key) is not None:
            check_output_file(options[key], option)


def _run_split_file(run, protocol):
    """The training run's split, unless another protocol is asked for (then a new split is drawn)."""
    split_file = run.get("split_file")
    if split_file and os.path.isfile(split_file) and protocol in (None, run.get("protocol")):
        return split_file
    return None


def resume_checkpoint_path(given, framework):
    """The checkpoint --resume names: a file, a run's folder, or (alone) the last checkpoint in --output-dir."""
    resume = given["resume"] or given.get("output_dir") or default_run_dir(framework, given.get("bit", DEFAULT_BIT))
    path = os.path.join(resume, LAST_CHECKPOINT_NAME[framework]) if os.path.isdir(resume) else resume
    if not os.path.isfile(path):
        if os.path.isdir(resume):  # what a run killed while writing its first checkpoint left
            with holding_workdir(resume, "--resume"):
                remove_temporary_files(resume)
        raise UserInputError(f"--resume: {path}: no such checkpoint")
    return path


def check_training_options(config):
    """What must hold before a training run writes anything (the configuration's values come from
    options, YAML files or a checkpoint's saved configuration alike)."""
    check_image_size(config["image_size"])
    check_output_dir(config["output_dir"], "--output-dir")
    if not os.path.exists(config["split_file"]):
        check_output_file(config["split_file"], "--split-file")


# What a run writes in its folder besides its checkpoint (best weights, named per framework, too).
RUN_FILE_NAMES = (RUN_CONFIG_NAME, RUN_HISTORY_NAME, RUN_SPLIT_NAME)


@contextlib.contextmanager
def run_folder(output_dir, framework, fresh, first_process):
    """The run's folder while it trains, held by its first process (one run per folder: another run
    writing the same checkpoints would interleave them). The first process removes what killed writes left
    (temporary files) and, for a fresh run, what an unfinished start left (config.yaml and split.npz
    without a checkpoint). A fresh run that fails before its first checkpoint (a bad --pretrained,
    divergence in the first epoch, Ctrl-C, SIGTERM) removes what it wrote, and the folder if it made it:
    a run folder holds a checkpoint to resume, or nothing of a run."""
    if not first_process:
        yield
        return
    made_folder = not os.path.isdir(output_dir)
    with holding_workdir(output_dir, "--output-dir"):
        remove_temporary_files(output_dir)
        if not fresh:
            yield
            return
        if not made_folder and os.path.isfile(os.path.join(output_dir, RUN_CONFIG_NAME)):
            _remove_run_files(output_dir, _run_file_names(framework))
        kept = {name for name in _run_file_names(framework) if os.path.isfile(os.path.join(output_dir, name))}
        try:
            yield
        except BaseException:
            if not os.path.exists(os.path.join(output_dir, LAST_CHECKPOINT_NAME[framework])):
                _remove_run_files(output_dir, set(_run_file_names(framework)) - kept)
                if made_folder:
                    shutil.rmtree(output_dir, ignore_errors=True)
            raise


def _run_file_names(framework):
    return RUN_FILE_NAMES + (BEST_WEIGHTS_NAME[framework],)


def _remove_run_files(output_dir, names):
    for name in names:
        path = os.path.join(output_dir, name)
        if os.path.isfile(path):
            os.remove(path)
    remove_temporary_files(output_dir)


def check_fresh_output_dir(output_dir, framework):
    """A new run must not overwrite another run's checkpoint."""
    last = os.path.join(output_dir, LAST_CHECKPOINT_NAME[framework])
    if os.path.exists(last):
        raise UserInputError(f"{output_dir} already holds a run ({last}); continue it with --resume, or choose "
                             "another --output-dir (or delete that folder) to start anew")


def evaluation_report(options, data, metrics, seconds, environment):
    """What eval prints and writes: the figures and everything needed to say what they are figures of."""
    return {"checkpoint": os.path.abspath(options["checkpoint"]), "bit": options["bit"],
            "map": metrics["map"], "query_accuracy": metrics["query_accuracy"], "ties": options["ties"],
            "protocol": data.split.protocol, "query_images": len(data.split.query),
            "database_images": len(data.split.database), "data": data.source, "image_size": options["image_size"],
            "seconds": round(seconds, 2), "framework": f"{environment['framework']} {environment['version']}",
            "device": environment["device"]}
