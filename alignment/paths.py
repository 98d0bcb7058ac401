"""Where the suite reads and writes, under one work folder (by default logs/).

  inputs/images.npy, inputs/labels.npy        the batch both sides see
  inputs/split.npz                            the split both sides' loaders read
  inputs/weights_bit<B>.pth / .pdparams       the weights both sides start from, converted
  <dtype>/<step>_torch.npy, <step>_paddle.npy reprod_log files of each side
  <dtype>/<step>_diff.log, <step>_diff.json   the checker's verdict
  <dtype>/env_torch.json, env_paddle.json     each side's framework, device, threads
"""
import os


def inputs_dir(workdir):
    return os.path.join(workdir, "inputs")


def split_path(workdir):
    return os.path.join(inputs_dir(workdir), "split.npz")


def weights_path(workdir, bit, suffix):
    return os.path.join(inputs_dir(workdir), f"weights_bit{bit}{suffix}")


def side_values_path(workdir, dtype, step, side):
    return os.path.join(workdir, dtype, f"{step}_{side}.npy")


def env_path(workdir, dtype, side):
    return os.path.join(workdir, dtype, f"env_{side}.json")


def diff_paths(workdir, dtype, step):
    """(reprod_log-style log, JSON verdict)."""
    stem = os.path.join(workdir, dtype, f"{step}_diff")
    return stem + ".log", stem + ".json"
