"""Where the suite reads and writes, under one work folder (by default logs/).

  inputs/images_<size>px.npy, inputs/labels.npy      the batch both sides see, at each size
  inputs/split.npz                                    the split both sides' loaders read (GreedyHash's)
  inputs/weights_bit<B>_<set>.pth                     each weight set both sides start from
                                                      (weights_<set>.* for a pair without codes: no bit B)
  inputs/weights_bit<B>_<set>.pdparams                its conversion, removed when a run of every step
                                                      ends unless --keep-arrays (the next converts it again)
  inputs/weights_bit<B>_<set>.stamp.json,             what each was made from (alignment.prepare_weights)
         weights_bit<B>_<set>.pdparams.stamp.json
  <dtype>/<case>/<step>_torch.npy, <step>_paddle.npy  reprod_log files of each side: every key of the
                                                      reprod_log steps, the failing keys of the others, every
                                                      key with --keep-arrays (alignment.suite.keep_arrays)
  <dtype>/<case>/<step>_diff.log, <step>_diff.json    the checker's verdict
  <dtype>/<case>/layers[_isolated]_<side>.npz         each side's layer record (alignment.layers), removed
                                                      once localized unless --keep-arrays
  <dtype>/env_torch.json, env_paddle.json             each side's framework, device, threads
  coverage/<case>.json                                what the reference's layers saw in a case
  coverage/<case>.stamp.json                          what it was recorded from (alignment.worker)
"""
import os

STAMP_SUFFIX = ".stamp.json"  # a content stamp beside the file it describes (greedyhash_common.infra.content_cache)


def inputs_dir(workdir):
    return os.path.join(workdir, "inputs")


def split_path(workdir):
    return os.path.join(inputs_dir(workdir), "split.npz")


def images_path(workdir, size):
    return os.path.join(inputs_dir(workdir), f"images_{size}px.npy")


def labels_path(workdir):
    return os.path.join(inputs_dir(workdir), "labels.npy")


def weights_path(workdir, bit, weight_set, suffix):
    """A weight set's file; `bit` 0: a pair without codes (alignment.pairs.base.NO_CODE_LENGTH), no bit in the name."""
    return os.path.join(inputs_dir(workdir), f"weights_{f'bit{bit}_' if bit else ''}{weight_set}{suffix}")


LAYOUTS = (".pth", ".pdparams")  # each weight set's files: torch's, then its conversion


def weight_set_files(workdir, bit, weight_set):
    """(.pth, .pdparams) of one weight set."""
    return tuple(weights_path(workdir, bit, weight_set, suffix) for suffix in LAYOUTS)


def weights_stamp_path(workdir, bit, weight_set, suffix=".pth"):
    """The stamp of a weight set's file in one layout (`suffix`): the .pth's, or its conversion's."""
    return weights_path(workdir, bit, weight_set, STAMP_SUFFIX if suffix == ".pth" else suffix + STAMP_SUFFIX)


def case_dir(workdir, dtype, case):
    return os.path.join(workdir, dtype, case.label)


def side_values_path(workdir, dtype, case, step, side):
    return os.path.join(case_dir(workdir, dtype, case), f"{step}_{side}.npy")


def layer_values_path(workdir, dtype, case, kind, side):
    """A layer record's values (alignment.layers: kind "layers" or "layers_isolated"), one array per key."""
    return os.path.join(case_dir(workdir, dtype, case), f"{kind}_{side}.npz")


def env_path(workdir, dtype, side):
    return os.path.join(workdir, dtype, f"env_{side}.json")


def diff_paths(workdir, dtype, case, step):
    """(reprod_log-style log, JSON verdict)."""
    stem = os.path.join(case_dir(workdir, dtype, case), f"{step}_diff")
    return stem + ".log", stem + ".json"


def coverage_path(workdir, case):
    return os.path.join(workdir, "coverage", f"{case.label}.json")


def coverage_stamp_path(workdir, case):
    return os.path.join(workdir, "coverage", f"{case.label}{STAMP_SUFFIX}")
