"""python -m alignment.zoo (make zoo): every architecture family both torchvision.models and paddle.vision.models
ship, one small variant each (10 classes), aligned through the one-call path (alignment.align) as shipped and,
where it does not align, again with each known library difference corrected.

Steps forward (eval and training mode), loss and backward (eval and training mode), float64 and float32, one
size (64 px; Inception v3 needs 80, paddle.vision's AlexNet 224: it has no adaptive pool), the suite's batch
of 4; failing cases localized, so that each cell is the diagnosis's (alignment.diagnosis). Writes the figures
(--json, docs/zoo.json) and renders them (--markdown, docs/zoo.md); each model's run folder keeps its report
and summary (the arrays are deleted as each model ends).
"""
import argparse
import json
import os
import shutil
import time

from greedyhash_common.infra.atomic import write_text
from greedyhash_common.infra.errors import (OneLineArgumentParser, UserInputError, exits_cleanly_on_bad_input,
                                            one_line_reason)
from greedyhash_common.project import PROJECT_ROOT

from .known_differences import paddle_pool_gradient_factor

STEPS = ("forward", "loss", "backward")
DTYPES = ("float64", "float32")
NUM_CLASSES = 10
SEED = 0
# (family, torchvision constructor, paddle.vision constructor and its options, image size), cheapest first: a
# run cut short has the most models done
ZOO = (("SqueezeNet", "squeezenet1_1", "squeezenet1_1", {}, 64),
       ("ShuffleNetV2", "shufflenet_v2_x0_5", "shufflenet_v2_x0_5", {}, 64),
       ("MobileNetV3", "mobilenet_v3_small", "mobilenet_v3_small", {}, 64),
       ("MobileNetV2", "mobilenet_v2", "mobilenet_v2", {}, 64),
       ("ResNet", "resnet18", "resnet18", {}, 64),
       ("GoogLeNet", "googlenet", "googlenet", {}, 64),
       ("DenseNet", "densenet121", "densenet121", {}, 64),
       ("Inception v3", "inception_v3", "inception_v3", {}, 80),
       ("ResNeXt", "resnext50_32x4d", "resnext50_32x4d", {}, 64),
       ("VGG", "vgg11", "vgg11", {}, 64),
       ("VGG with BatchNorm", "vgg11_bn", "vgg11", {"batch_norm": True}, 64),
       ("Wide ResNet", "wide_resnet50_2", "wide_resnet50_2", {}, 64),
       ("AlexNet", "alexnet", "alexnet", {}, 224))
# torchvision's options that leave out what only ImageNet training uses (auxiliary heads, SciPy's init)
TORCH_OPTIONS = {"googlenet": {"aux_logits": False, "init_weights": False},
                 "inception_v3": {"aux_logits": False, "init_weights": False}}


def build(entry, corrections=()):
    """The entry's torchvision and paddle.vision models, with `corrections` (of CORRECTIONS) applied; torch's
    initialization (the seeded weights: alignment.api copies the model it is given) drawn from SEED, as torch
    seeds its generator otherwise in each process, and the zoo's float32 rounding with it."""
    import paddle.vision.models
    import torch
    import torchvision.models

    _, torch_name, paddle_name, paddle_options, _ = entry
    torch.manual_seed(SEED)
    torch_model = getattr(torchvision.models, torch_name)(num_classes=NUM_CLASSES, **TORCH_OPTIONS.get(torch_name, {}))
    paddle_model = getattr(paddle.vision.models, paddle_name)(num_classes=NUM_CLASSES, **paddle_options)
    for _, _, correct in corrections:
        correct(torch_model, paddle_model)
    return torch_model, paddle_model


def _layers(model, kinds):
    """(name, layer) of every layer of a torch or Paddle model that is one of `kinds`."""
    named = model.named_sublayers() if hasattr(model, "sublayers") else model.named_modules()
    return [(name, layer) for name, layer in named if isinstance(layer, kinds)]


def batch_norm_statistics_as_torch(torch_model, paddle_model):
    """Paddle adds the batch's biased variance to its running variance, torch the unbiased one; the Paddle
    BatchNorms updated as torch's (alignment.pairs.resnet18_torch_bn)."""
    from .pairs.resnet18_torch_bn import update_batch_norm_as_torch

    update_batch_norm_as_torch(paddle_model, momentum=None)


def batch_norm_epsilon_in_float32(torch_model, paddle_model):
    """Paddle's BatchNorm adds its epsilon as float32 even in float64: torch's epsilon set to the same float32
    value."""
    import numpy as np
    import torch

    for _, layer in _layers(torch_model, torch.nn.modules.batchnorm._BatchNorm):
        layer.eps = float(np.float32(layer.eps))


def dropout_upscaled_in_training(torch_model, paddle_model):
    """paddle.vision's dropout `downscale_in_infer` (eval output scaled by 1 - p, training output not
    rescaled); torch's scales in training: the Paddle dropouts set to `upscale_in_train`."""
    import paddle

    for _, layer in _layers(paddle_model, paddle.nn.Dropout):
        layer.mode = "upscale_in_train"


def hardsigmoid_as_torch(torch_model, paddle_model):
    """Paddle's Hardsigmoid is x * float32(0.1666667) + 0.5 clipped with that gradient, torch's (x + 3) / 6
    clipped with gradient float32(1/6) (alignment.known_differences.HARDSIGMOID): each Paddle Hardsigmoid made
    to compute torch's forward and torch's gradient (Paddle's hardsigmoid of slope 1/6 back-propagates
    float32(1/6))."""
    import paddle

    class TorchHardsigmoid(paddle.nn.Layer):
        def forward(self, inputs):
            with_torch_gradient = paddle.nn.functional.hardsigmoid(inputs, slope=1 / 6)
            as_torch = paddle.nn.functional.relu6(inputs + 3) / 6
            return with_torch_gradient + (as_torch - with_torch_gradient).detach()

    for parent in [paddle_model, *paddle_model.sublayers()]:
        for name, child in parent.named_children():
            if isinstance(child, paddle.nn.Hardsigmoid):
                setattr(parent, name, TorchHardsigmoid())


def average_pool_gradient_as_torch(torch_model, paddle_model):
    """Paddle's average pool back-propagates float32(1/n) times each window's gradient even in float64, torch's
    divides by n (alignment.known_differences.AVERAGE_POOL_GRADIENT): each Paddle pool whose windows all count
    n values (an AvgPool2D counting the padding, an AdaptiveAvgPool2D whose input parts into windows of one
    size, as any pool to 1x1 does) made to back-propagate its gradient times 1 / (n * float32(1/n)), torch's to
    float64 rounding, its output unchanged; an adaptive pool's windows are counted at each call (they follow
    its input's size), and where they differ its gradient stays Paddle's."""
    for layer in paddle_model.sublayers(include_self=True):
        if _may_have_equal_windows(layer):
            # the same layer and settings; its class keeps Paddle's name: the same operator, so the
            # localization pairs it with torch's pool
            layer.__class__ = _with_torch_gradient(type(layer))


def _with_torch_gradient(pool_class):
    def forward(self, inputs):
        count = _values_per_window(self, inputs.shape)
        if count is None:
            return pool_class.forward(self, inputs)
        rescaled = pool_class.forward(self, inputs * (1 / paddle_pool_gradient_factor(count)))
        return rescaled + (pool_class.forward(self, inputs) - rescaled).detach()

    return type(pool_class.__name__, (pool_class,), {"forward": forward})


def _may_have_equal_windows(layer):
    """A Paddle average pool whose windows all count one number of values (padding included), or may, as an
    adaptive pool's do for some input sizes."""
    import paddle

    if type(layer) is paddle.nn.AvgPool2D:  # ceil_mode's last windows count fewer
        return not layer.exclusive and layer.divisor is None and not layer.ceil_mode and layer.data_format == "NCHW"
    return type(layer) is paddle.nn.AdaptiveAvgPool2D and layer._data_format == "NCHW"


def _values_per_window(pool, shape):
    """How many values each window of `pool` (_may_have_equal_windows) counts for an input of `shape`; None
    when its windows count different numbers. An adaptive pool's i-th window of `size` values parted in `parts`
    spans floor(i * size / parts) to ceil((i + 1) * size / parts), in torch and in Paddle."""
    import numpy as np

    if not hasattr(pool, "_output_size"):
        return int(np.prod(np.broadcast_to(pool.ksize, (2,))))
    count = 1
    for size, parts in zip(shape[2:], np.broadcast_to(np.array(pool._output_size, dtype=object), (2,))):
        parts = size if parts is None else parts
        widths = {-(-(i + 1) * size // parts) - i * size // parts for i in range(parts)}
        if len(widths) > 1:
            return None
        count *= widths.pop()
    return count


def inception_batch_norm_epsilon_and_dropout(torch_model, paddle_model):
    """Inception v3: torchvision's BatchNorms add epsilon 0.001, paddle.vision's 1e-5; its dropout drops 0.5,
    paddle.vision's 0.2: the Paddle model given torch's."""
    import paddle

    for _, layer in _layers(paddle_model, paddle.nn.layer.norm._BatchNormBase):
        layer._epsilon = 0.001
    for _, layer in _layers(paddle_model, paddle.nn.Dropout):
        layer.p = 0.5


def squeezenet_stem_and_pooling(torch_model, paddle_model):
    """SqueezeNet 1.1: paddle.vision's stem convolution pads by 1 (torchvision's by 0) and its max-pools floor
    (torchvision's ceil_mode=True): the Paddle stem without padding, its pools with ceil_mode."""
    import paddle

    paddle_model._conv = paddle.nn.Conv2D(3, 64, 3, stride=2, padding=0)
    for _, layer in _layers(paddle_model, paddle.nn.MaxPool2D):
        layer.ceil_mode = True


def _has_batch_norm(paddle_model):
    import paddle

    return bool(_layers(paddle_model, (paddle.nn.layer.norm._BatchNormBase, paddle.nn.BatchNorm)))


def _has_hardsigmoid(paddle_model):
    import paddle

    return bool(_layers(paddle_model, paddle.nn.Hardsigmoid))


def _has_downscaled_dropout(paddle_model):
    import paddle

    return any(layer.mode == "downscale_in_infer" for _, layer in _layers(paddle_model, paddle.nn.Dropout))


def _has_inexact_average_pool(entry, paddle_model):
    """A Paddle average pool whose windows all count n values at the entry's size, n * float32(1/n) not 1 (n
    not a power of two): where the correction changes a gradient."""
    import paddle

    counts = []

    def count(pool, inputs):
        counts.append(_values_per_window(pool, inputs[0].shape))

    hooks = [layer.register_forward_pre_hook(count) for layer in paddle_model.sublayers(include_self=True)
             if _may_have_equal_windows(layer)]
    if hooks:
        paddle_model.eval()
        with paddle.no_grad():
            paddle_model(paddle.zeros([1, 3, entry[4], entry[4]]))
    for hook in hooks:
        hook.remove()
    return any(values and paddle_pool_gradient_factor(values) != 1 for values in counts)


# (name of the library difference, when it applies, the correction)
CORRECTIONS = (
    ("BatchNorm running variance (torch unbiased, Paddle biased)",
     lambda entry, paddle_model: _has_batch_norm(paddle_model), batch_norm_statistics_as_torch),
    ("BatchNorm epsilon float32 in Paddle even in float64",
     lambda entry, paddle_model: _has_batch_norm(paddle_model), batch_norm_epsilon_in_float32),
    ("dropout downscale_in_infer in Paddle",
     lambda entry, paddle_model: _has_downscaled_dropout(paddle_model), dropout_upscaled_in_training),
    ("Hardsigmoid: torch's forward in Paddle",
     lambda entry, paddle_model: _has_hardsigmoid(paddle_model), hardsigmoid_as_torch),
    ("average-pool gradient: torch's 1/n in Paddle's pools of equal windows",
     _has_inexact_average_pool, average_pool_gradient_as_torch),
    ("Inception v3 BatchNorm epsilon 0.001 vs 1e-5 and dropout 0.5 vs 0.2",
     lambda entry, paddle_model: entry[1] == "inception_v3", inception_batch_norm_epsilon_and_dropout),
    ("SqueezeNet stem padding 0 vs 1 and max-pool ceil_mode True vs False",
     lambda entry, paddle_model: entry[1] == "squeezenet1_1", squeezenet_stem_and_pooling),
)


def run_one(entry, workdir, corrections=()):
    """The diagnosis of one model (run_summary), or {"error": ...} when it cannot be aligned (a key map not
    inferred, a model that fails)."""
    from . import align

    torch_model, paddle_model = build(entry, corrections)
    started = time.perf_counter()
    try:
        result = align(torch_model, paddle_model, sizes=(entry[4],), dtypes=DTYPES, steps=STEPS, workdir=workdir,
                       name=entry[1])
    except UserInputError as error:
        return {"error": str(error), "seconds": round(time.perf_counter() - started)}
    except Exception as error:  # a model that cannot run as its counterpart does: the zoo says so
        return {"error": one_line_reason(error), "seconds": round(time.perf_counter() - started)}
    finally:
        for folder in ("inputs", *DTYPES):
            shutil.rmtree(os.path.join(workdir, folder), ignore_errors=True)
    return {**run_summary(result.rows), "seconds": round(time.perf_counter() - started)}


def run_summary(rows):
    """What the zoo says of a run, read from its checks' diagnosis (alignment.verdict.StepVerdict): the
    verdict, the known library differences by name, the checks that fail as defects, and each failing check's
    diagnosis line."""
    from .diagnosis import DEFECT, KNOWN
    from .known_differences import names_in
    from .verdict import all_passed

    findings = [finding for row in rows for finding in row.findings]
    differences = dict.fromkeys(name for finding in findings if finding.kind == KNOWN
                                for name in names_in(finding.reason))
    verdict = ("aligns" if not findings else "aligns up to rounding" if all_passed(rows)
               else "differs")
    return {"verdict": verdict, "checks": len(rows), "checks_passed": sum(row.passed for row in rows),
            "differences": list(differences),
            "defects": [row.label for row in rows if any(finding.kind == DEFECT for finding in row.findings)],
            "diagnosis": [row.line() for row in rows if row.findings]}


def applicable_corrections(entry):
    """The CORRECTIONS that apply to a zoo entry's models."""
    paddle_model = build(entry)[1]
    return [correction for correction in CORRECTIONS if correction[1](entry, paddle_model)]


def zoo_row(entry, workdir):
    """One model as shipped and, unless it aligns, with every correction that applies to it."""
    row = {"family": entry[0], "torch": f"torchvision.models.{entry[1]}",
           "paddle": f"paddle.vision.models.{entry[2]}" + "".join(f", {key}={value}"
                                                                  for key, value in entry[3].items()),
           "size": entry[4], "shipped": run_one(entry, os.path.join(workdir, entry[1], "shipped"))}
    # after the run: a correction may run the model to see whether it applies (a model that cannot run is not)
    applicable = applicable_corrections(entry) if row["shipped"].get("verdict") == "differs" else []
    if applicable:
        row["corrections"] = [name for name, _, _ in applicable]
        row["corrected"] = run_one(entry, os.path.join(workdir, entry[1], "corrected"), applicable)
    print(f"zoo {entry[0]}: {_verdict(row['shipped'])}"
          + (f"; corrected: {_verdict(row['corrected'])}" if "corrected" in row else ""), flush=True)
    return row


def _verdict(run):
    if "error" in run:
        return "cannot run: " + run["error"]
    return f"{run['verdict']} ({run['checks_passed']}/{run['checks']} checks, {run['seconds']} s)"


def run_cell(run):
    """A run's verdict, its library differences by name and the checks that fail as defects."""
    parts = [_verdict(run)]
    parts += [f"known: {name}" for name in run.get("differences", [])]
    parts += [f"defect: {label}" for label in run.get("defects", [])]
    return "<br>".join(parts)


def _not_run(rows):
    done = {row["family"] for row in rows}
    return ", ".join(entry[0] for entry in ZOO if entry[0] not in done)


def render(rows, command, complete=True):
    lines = ["# The zoo: torchvision against paddle.vision, through the one-call path", "",
             f"Generated by `{command}` from [zoo.json](zoo.json) (the figures); do not edit by hand. Each model:",
             f"`alignment.align(torch_model, paddle_model, sizes=(size,), steps={STEPS}, dtypes={DTYPES})`,",
             "10 classes,",
             "the seeded weights (torch's initialization, BatchNorm drawn) copied into Paddle through the inferred key",
             "map, the suite's batch of 4. Forward and backward are checked in eval and training mode. A model that",
             "does not align as shipped runs again with every known library difference that applies to it corrected",
             "(alignment/zoo.py, CORRECTIONS). Each cell is read from the run's diagnosis (alignment.diagnosis):",
             "its verdict, each known library difference by name (alignment.known_differences), and each check",
             "that fails as a defect (a difference no known one explains); zoo.json holds each failing check's",
             "diagnosis line. Paddle's average-pool backward scales by float32(1/n) in float64",
             "(docs/adding-a-model-pair.md): gradients below a pool over a window whose size is not a power of two",
             "part by about 1e-8 relative in float64 (named \"average-pool gradient precision\" for pools to one",
             "value per channel and pools of equal windows); corrected in Paddle's average-pool layers whose",
             "windows all count one number of values (a pool counting the padding, an adaptive pool to 1x1).", "",
             *([] if complete else [f"**Incomplete: the run was cut short; not run: {_not_run(rows)}.**", ""]),
             "| family | torch / paddle | px | as shipped | corrections applied | corrected |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        shipped, corrected = run_cell(row["shipped"]), run_cell(row["corrected"]) if "corrected" in row else ""
        lines.append(f"| {row['family']} | `{row['torch']}` / `{row['paddle']}` | {row['size']} | {shipped} |"
                     f" {'<br>'.join(row.get('corrections', []))} | {corrected} |")
    return "\n".join(lines) + "\n"


@exits_cleanly_on_bad_input
def main(argv=None):
    parser = OneLineArgumentParser(prog="python -m alignment.zoo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="comma-separated torchvision names (such as squeezenet1_1); default: all")
    parser.add_argument("--workdir", default=os.path.join(PROJECT_ROOT, "logs", "zoo"))
    parser.add_argument("--json", default=os.path.join(PROJECT_ROOT, "docs", "zoo.json"))
    parser.add_argument("--markdown", default=os.path.join(PROJECT_ROOT, "docs", "zoo.md"))
    parser.add_argument("--render", action="store_true", help="only render --markdown from --json again")
    args = parser.parse_args(argv)
    if args.render:
        with open(args.json, encoding="utf-8") as handle:
            rows = json.load(handle)
        write_text(args.markdown, render(rows, "make zoo", complete=len(rows) == len(ZOO)))
        return
    chosen = args.models.split(",") if args.models else [entry[1] for entry in ZOO]
    unknown = sorted(set(chosen) - {entry[1] for entry in ZOO})
    if unknown:
        raise UserInputError(f"--models {','.join(unknown)}: choose from {', '.join(entry[1] for entry in ZOO)}")
    command = f"python -m alignment.zoo --models {args.models}" if args.models else "make zoo"
    rows = []
    for entry in (entry for entry in ZOO if entry[1] in chosen):
        rows.append(zoo_row(entry, os.path.abspath(args.workdir)))
        # after each model: a run cut short leaves the models done, and says it was cut short
        write_text(args.json, json.dumps(rows, indent=1) + "\n")
        write_text(args.markdown, render(rows, command, complete=len(rows) == len(chosen)))


if __name__ == "__main__":
    main()
