"""What the one-call path (alignment.align) names, measured on torchvision's and paddle.vision's models:

  python -m benchmarks.planted_defects  (make planted-defects)

- each defect planted in the Paddle side of MobileNetV2 (ReLU6 for ReLU, a padded pointwise convolution and a
  BatchNorm momentum, as benchmarks/layer_tree_cases.py plants them; an adaptive max for the average pool)
  and of SqueezeNet 1.1 (ceil_mode off: MobileNetV2 has no max-pool): the headline first divergence of every
  trace, and the diagnosis line of each check;
- the diagnosis line of each class of failing key: a defect, a known library difference (the models as
  shipped), rounding (float32, the library differences corrected) and the zero-reference artifact (keys
  held to their operation's scale);
- MobileNetV2's ReLU6 coverage in eval and training mode, and what the coverage table reports.

MobileNetV2's defects run on a checkpoint whose BatchNorm scales are drawn as a trained model's are
(CHECKPOINT_BATCH_NORM): at torchvision's initialization with the suite's draws, no ReLU6 input passes 6 in
eval mode, so a ReLU6 made a ReLU would change nothing there. A clipped straight-through backward does not
apply: neither model has a sign layer (GreedyHash's is planted by its mutants, alignment/mutants).
Forward and backward, float64 (rounding: float32), 64 px (SqueezeNet 65: its first pool's last window is cut
by the border there, where ceil_mode decides). Writes --output (JSON) and the same as markdown beside it.
"""
import argparse
import glob
import json
import os
import sys
import tempfile

import numpy as np

from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import OneLineArgumentParser
from greedyhash_common.project import PROJECT_ROOT

NUM_CLASSES = 10
# A trained MobileNetV2's BatchNorm: scales above the initialization's 1, so eval mode clamps at ReLU6's 6
CHECKPOINT_BATCH_NORM = {"running_mean": (-0.5, 0.5), "running_var": (0.5, 2.0), "weight": (1.0, 4.0)}
RELU6_LIMIT = 6
STEPS = ("forward", "backward")


def adaptive_max_for_average_pool(model):
    import paddle

    model.pool2d_avg = paddle.nn.AdaptiveMaxPool2D(1)
    return model


def squeezenet_ceil_mode_off(model):
    """SqueezeNet with torchvision's choices where the libraries differ (alignment.zoo's corrections), then
    its first max-pool's ceil_mode off."""
    from alignment.zoo import dropout_upscaled_in_training, squeezenet_stem_and_pooling

    squeezenet_stem_and_pooling(None, model)
    dropout_upscaled_in_training(None, model)
    model._pool.ceil_mode = False
    return model


def _plant(name):
    """A defect benchmarks/layer_tree_cases.py plants (the layer-tree localization tests plant the same)."""
    from . import layer_tree_cases

    return lambda model: getattr(layer_tree_cases, name)(model)


# name: (model, image size, what is planted, the plant)
DEFECTS = {"relu6 -> relu": ("mobilenet_v2", 64, "features.3.conv.1.2: ReLU6 -> ReLU", _plant("relu_for_relu6")),
           "padding": ("mobilenet_v2", 64, "features.1.conv.1: padding 0 -> 1",
                       _plant("padded_pointwise_convolution")),
           "adaptive max pool": ("mobilenet_v2", 64, "the final pool: adaptive average -> adaptive max",
                                 adaptive_max_for_average_pool),
           "batch norm momentum": ("mobilenet_v2", 64, "features.5.conv.1.1: momentum 0.9 -> 0.5 (Paddle's convention)",
                                   _plant("batch_norm_momentum")),
           "ceil_mode": ("squeezenet1_1", 65, "features.2 (Paddle's _pool): ceil_mode True -> False",
                         squeezenet_ceil_mode_off)}


def models(arch):
    import paddle.vision.models
    import torch
    import torchvision.models

    torch.manual_seed(0)
    return (getattr(torchvision.models, arch)(num_classes=NUM_CLASSES),
            getattr(paddle.vision.models, arch)(num_classes=NUM_CLASSES))


def mobilenet_v2_checkpoint(path):
    """Save torchvision's MobileNetV2 with its BatchNorms drawn from CHECKPOINT_BATCH_NORM to `path`."""
    import torch

    torch_model, _ = models("mobilenet_v2")
    generator = np.random.default_rng(0)
    for module in torch_model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            for name, (low, high) in CHECKPOINT_BATCH_NORM.items():
                getattr(module, name).data.copy_(torch.from_numpy(generator.uniform(low, high, module.num_features)))
    torch.save(torch_model.state_dict(), path)
    return path


def align_defect(name, workdir, checkpoint):
    """alignment.align on the model of DEFECTS[name] with its defect planted on the Paddle side."""
    import alignment

    arch, size, _, plant = DEFECTS[name]
    torch_model, paddle_model = models(arch)
    user = {"weights": checkpoint, "weight_sets": ("user",)} if arch == "mobilenet_v2" else {}
    return alignment.align(torch_model, plant(paddle_model), sizes=(size,), dtypes=("float64",), steps=STEPS,
                           workdir=workdir, **user)


def headlines(result):
    """{"<mode> <direction>": "layer (kinds: operator), place"} of every trace that diverges."""
    named = {}
    for localization in result.localizations.values():
        for trace in localization.traces:
            divergence = trace.divergence()
            if divergence:
                row, place = divergence
                operator = f": {row.operator}" if row.operator else ""
                named[f"{trace.mode} {trace.direction}"] = f"{row.layer} ({row.types}{operator}), {place}"
    return named


def zero_reference_keys(workdir):
    """The keys held to their operation's scale (alignment.check.ZERO_REFERENCE): [KeyResult]."""
    from alignment.check import ZERO_REFERENCE, read_result

    return [key for path in sorted(glob.glob(os.path.join(workdir, "float*", "*", "*_diff.json")))
            for key in read_result(path).keys if key.note.startswith(ZERO_REFERENCE)]


def relu6_coverage(result):
    """MobileNetV2's ReLU6 layers: how many see an input beyond 6 in eval mode, in training mode, and how
    many the coverage table reports not covered (its criterion met in neither mode)."""
    rows = [row for row in result.coverage_rows if row.type == "ReLU6"]
    facts = [fact for row in rows for fact in row.facts.values()]
    return {"relu6_layers": len(rows),
            "beyond_6_in_eval": sum(fact["largest_input"] > RELU6_LIMIT for fact in facts),
            "beyond_6_in_training": sum(fact["train_largest_input"] > RELU6_LIMIT for fact in facts),
            "reported_not_covered": sum(not row.covered for row in rows)}


def measure(workdir):
    from alignment.diagnosis import DEFECT, KNOWN, ROUNDING
    from alignment.zoo import batch_norm_epsilon_in_float32, batch_norm_statistics_as_torch

    import alignment

    os.makedirs(workdir, exist_ok=True)
    checkpoint = mobilenet_v2_checkpoint(os.path.join(workdir, "mobilenet_v2_trained_batch_norm.pth"))
    figures = {"defects": {}, "classes": {}, "coverage": {}}
    for name, (arch, size, planted, _) in DEFECTS.items():
        result = align_defect(name, os.path.join(workdir, name.replace(" ", "_")), checkpoint)
        figures["defects"][name] = {"model": arch, "planted": planted, "passed": result.passed,
                                    "headlines": headlines(result), "diagnosis": [row.line() for row in result.rows]}
        if name == "relu6 -> relu":
            figures["classes"][DEFECT] = next(row.line() for row in result.rows if row.kind == DEFECT)
            figures["coverage"]["checkpoint (BatchNorm as trained)"] = relu6_coverage(result)
    shipped = alignment.align(*models("mobilenet_v2"), sizes=(64,), dtypes=("float64",), steps=STEPS,
                              workdir=os.path.join(workdir, "shipped"))
    figures["classes"][KNOWN] = next(row.line() for row in shipped.rows if row.kind == KNOWN)
    figures["coverage"]["seeded (the suite's draws)"] = relu6_coverage(shipped)
    torch_model, paddle_model = models("mobilenet_v2")
    for correct in (batch_norm_statistics_as_torch, batch_norm_epsilon_in_float32):
        correct(torch_model, paddle_model)
    corrected_folder = os.path.join(workdir, "corrected")
    corrected = alignment.align(torch_model, paddle_model, sizes=(64,), steps=STEPS, workdir=corrected_folder)
    figures["classes"][ROUNDING] = next((row.line() for row in corrected.rows if row.kind == ROUNDING),
                                        "none: no check passed as rounding")
    zero = zero_reference_keys(corrected_folder)
    figures["classes"]["zero-reference artifact"] = (
        f"{len(zero)} keys of the corrected run held to their operation's scale, {sum(key.passed for key in zero)}"
        f" pass; e.g. {zero[0].name}: max abs {zero[0].max_abs:.2g}, limit {zero[0].limit:.2g}"
        if zero else "none")
    figures["corrected"] = [row.line() for row in corrected.rows]
    return figures


def markdown(figures, command):
    lines = [f"<!-- written by {command}; do not edit -->", "# Planted defects and diagnosis classes, through"
             " `alignment.align`", "", "| defect (Paddle side) | model | headline first divergence, per trace |",
             "| --- | --- | --- |"]
    for name, entry in figures["defects"].items():
        named = "<br>".join(f"{trace}: {what}" for trace, what in entry["headlines"].items()) or "none"
        lines.append(f"| {entry['planted']} | {entry['model']} | {named} |")
    lines += ["", "| class | diagnosis line |", "| --- | --- |"]
    lines += [f"| {kind} | {line} |" for kind, line in figures["classes"].items()]
    lines += ["", "| MobileNetV2 weights | ReLU6 layers | input beyond 6 in eval mode | in training mode |"
              " reported not covered |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {weights} | {counts['relu6_layers']} | {counts['beyond_6_in_eval']} |"
              f" {counts['beyond_6_in_training']} | {counts['reported_not_covered']} |"
              for weights, counts in figures["coverage"].items()]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = OneLineArgumentParser(prog="python -m benchmarks.planted_defects", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=os.path.join(PROJECT_ROOT, "docs", "planted_defects.json"))
    parser.add_argument("--workdir", help="where the runs go (default: a temporary folder, deleted)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="planted-defects-") as scratch:
        figures = measure(args.workdir or scratch)
    write_text(args.output, json.dumps(figures, indent=1) + "\n")
    write_text(os.path.splitext(args.output)[0] + ".md", markdown(figures, "make planted-defects"))
    print(markdown(figures, "make planted-defects"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
