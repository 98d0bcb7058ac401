"""What a mutation run checks, and where it writes under its work folder.

  inputs/, float64/, coverage/, side_*.log     the unmutated suite's run (alignment.suite's layout)
  mutants/all.json, mutants/selected.json      every mutant, and those this run checks
  mutants/results/<n>.json                     the outcome of the n-th selected mutant
  mutation.json, mutation.md                   the score, per operator and per layer; every survivor
"""
import os

DTYPE = "float64"  # separates a defect from rounding; float32 adds nothing a mutant could hide behind
MUTANT_STEPS = ("forward", "loss", "backward", "optim", "train")
SUMMARY_JSON, REPORT_MD = "mutation.json", "mutation.md"


def mutants_dir(workdir):
    return os.path.join(workdir, "mutants")


def all_mutants_path(workdir):
    return os.path.join(mutants_dir(workdir), "all.json")


def selected_mutants_path(workdir):
    return os.path.join(mutants_dir(workdir), "selected.json")


def result_path(workdir, index):
    return os.path.join(mutants_dir(workdir), "results", f"{index}.json")
