"""The report's figures, drawn from what the run compared (PNG files in <workdir>/figures/).

- divergence profile, one per localized case: every layer's relative difference (max |paddle - torch|
  / max |torch|) in the order the layers run, forward (the layer's output) and backward (the gradient of
  its input), in float32 and float64, beside the relative tolerance it is held to, in the mode that fails
  (training mode when only it fails; eval otherwise). Where a difference starts shows as the step up from
  the float64 floor, and the first divergence is marked; at any depth at most MAX_LABELS layers are
  named along the axis.
- train step: |paddle - torch| of each loss term at every iteration, per case and precision, beside
  the limit it is held to.
"""
import os

from greedyhash_common.infra.atomic import atomic_path

from .check import read_result
from .paths import diff_paths

FIGURES_DIR = "figures"
TRAIN_KEYS = ("loss_total", "loss_cross_entropy", "loss_quantization")
FLOOR = 1e-18  # where a difference of exactly 0 is drawn on a log scale
MAX_LABELS = 40  # layer names along a profile's axis: every k-th layer's beyond that, so labels stay readable


def _figure(**options):
    """A matplotlib Figure drawn by Agg, made without pyplot: its import and backend set-up take longer than
    drawing a report's figure (about 0.4 s of the one-call path's; docs/performance.md), and a figure no
    window shows needs neither."""
    from matplotlib.figure import Figure

    return Figure(**options)


def _save(figure, path):
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=80)


def failing_mode(localizations):
    """The mode the profile shows: the first whose traces fail in some precision (eval first), else eval."""
    for mode in ("eval", "train"):
        if any(not trace.passed for localization in localizations.values() for trace in localization.traces
               if trace.mode == mode):
            return mode
    return "eval"


def profile_series(localization, mode, direction):
    """(layer names in forward order, relative differences, relative tolerances, index of the first
    divergence or None) of one trace; None when the localization has no such trace."""
    trace = next((trace for trace in localization.traces if trace.mode == mode and trace.direction == direction), None)
    if trace is None:
        return None
    rows = trace.rows if direction == "forward" else trace.rows[::-1]
    divergence = trace.divergence()
    first = rows.index(divergence[0]) if divergence else None
    return ([row.layer for row in rows], [max(row.computes.max_rel, FLOOR) for row in rows],
            [row.computes.rtol for row in rows], first)


def label_every(layers):
    """Tick positions and names: every layer up to MAX_LABELS, else every k-th."""
    step = max(1, -(-len(layers) // MAX_LABELS))
    positions = list(range(0, len(layers), step))
    return positions, [layers[position] for position in positions]


def draw_divergence_profile(workdir, case, localizations):
    """One figure of `case` from its localizations ({dtype: Localization}); returns its path."""
    mode = failing_mode(localizations)
    figure = _figure(figsize=(12, 8))
    axes = figure.subplots(2, 1, sharex=True)
    layers = []
    for axis, direction, what in zip(axes, ("forward", "backward"), ("output", "gradient of the input")):
        for dtype, localization in sorted(localizations.items()):
            series = profile_series(localization, mode, direction)
            if series is None:
                continue
            layers, differences, tolerances, first = series
            positions = range(len(layers))
            line, = axis.plot(positions, differences, marker="o", markersize=3,
                              label=f"{dtype}: |paddle - torch| / max |torch|")
            axis.plot(positions, tolerances, linestyle="--", color=line.get_color(), label=f"{dtype}: tolerance (rtol)")
            if first is not None:
                axis.axvline(first, color=line.get_color(), linestyle=":",
                             label=f"{dtype}: first divergence, {layers[first]}")
        axis.set(yscale="log", title=f"{direction}: each layer's {what}, {mode} mode, {case.label}",
                 ylabel="relative difference")
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7)
    ticks, names = label_every(layers)
    axes[-1].set_xticks(ticks, names)
    axes[-1].tick_params(axis="x", rotation=90, labelsize=7)
    every = ticks[1] - ticks[0] if len(ticks) > 1 else 1
    axes[-1].set_xlabel(f"layers in the order they run ({len(layers)}; every {every} named)")
    figure.tight_layout()
    path = os.path.join(workdir, FIGURES_DIR, f"divergence_{case.label}.png")
    _save(figure, path)
    return path


def _train_differences(workdir, rows):
    """[(case label, dtype, {key: (per-iteration |difference|, limit)})] of every train check."""
    found = []
    for row in rows:
        if row.step != "train":
            continue
        keys = {key.name: key for key in read_result(diff_paths(workdir, row.dtype, row.case, "train")[1]).keys}
        series = {name: (keys[name].per_element, keys[name].limit) for name in TRAIN_KEYS
                  if name in keys and keys[name].per_element is not None}
        if series:
            found.append((row.case.label, row.dtype, series))
    return found


def draw_train_differences(workdir, rows):
    """The train step's per-iteration differences; returns the figure's path, or None without a train check."""
    found = _train_differences(workdir, rows)
    if not found:
        return None
    figure = _figure(figsize=(9, 2.6 * len(found)))
    axes = figure.subplots(len(found), 1, squeeze=False)
    for axis, (case, dtype, series) in zip(axes[:, 0], found):
        for key, (differences, limit) in series.items():
            line, = axis.plot(range(1, len(differences) + 1), [max(value, FLOOR) for value in differences],
                              marker=".", label=key)
            axis.axhline(max(limit, FLOOR), linestyle="--", color=line.get_color(), linewidth=0.8)
        axis.set(yscale="log", title=f"train step, {case}, {dtype}: |paddle - torch| per iteration (dashed: limit)",
                 xlabel="iteration", ylabel="|difference|")
        axis.legend(fontsize=7)
    figure.tight_layout()
    path = os.path.join(workdir, FIGURES_DIR, "train_differences.png")
    _save(figure, path)
    return path


def draw_figures(workdir, rows, localizations):
    """Every figure the run's results allow; returns their paths."""
    by_case = {}
    for (dtype, case), localization in localizations.items():
        by_case.setdefault(case, {})[dtype] = localization
    paths = [draw_divergence_profile(workdir, case, found) for case, found in by_case.items()]
    train = draw_train_differences(workdir, rows)
    return paths + ([train] if train else [])
