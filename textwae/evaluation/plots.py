"""PNG plots of a run: the latent map of held-out codes and the training curves.

Figures are built with `matplotlib.figure.Figure` and the Agg canvas directly, so nothing
touches pyplot's global state or needs a display, and every file is written atomically.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from textwae.data.records import Example
from textwae.errors import EvaluationWarning
from textwae.models.autoencoder import TextWAE
from textwae.models.reading import codes_of
from textwae.runs import checkpoint
from textwae.runs.checkpoint import CURVES_FILE, LATENT_MAP_FILE
from textwae.runs.metrics_log import read_metrics

MAX_LEGEND_ENTRIES = 20  # beyond this a legend hides the plot


def _save(figure: Figure, path: str | Path) -> Path:
    FigureCanvasAgg(figure)
    checkpoint.atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110))
    return Path(path)


def pca_2d(codes: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Project codes (N, D), and `others` (M, D) alike, on the codes' first two principal axes.

    A latent space of one dimension gets a zero second coordinate.
    """
    codes = codes.detach().float().cpu()
    centre = codes.mean(dim=0)
    _, _, vh = torch.linalg.svd(codes - centre, full_matrices=False)  # vh: (min(N, D), D)
    axes = vh[:2].T  # (D, <=2)
    projected = []
    for points in (codes, *others):
        xy = (points.detach().float().cpu() - centre) @ axes  # (N, <=2)
        projected.append(torch.cat([xy, torch.zeros(len(xy), 2 - xy.shape[1])], dim=1))
    return projected


def _scatter_by(ax: Axes, xy: torch.Tensor, groups: list, title: str, name: str) -> None:
    """One colour per group value, in sorted order, with a legend when it stays readable."""
    palette = matplotlib.colormaps["tab10" if len(set(groups)) <= 10 else "tab20"]
    for i, value in enumerate(sorted(set(groups), key=str)):
        chosen = torch.tensor([g == value for g in groups])
        ax.scatter(xy[chosen, 0].numpy(), xy[chosen, 1].numpy(), s=8, alpha=0.6,
                   color=palette(i % palette.N), label=f"{name} {value}")
    ax.set_title(title)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    if len(set(groups)) <= MAX_LEGEND_ENTRIES:
        ax.legend(fontsize="small", markerscale=2, loc="best")


def plot_latent_map(model: TextWAE, examples: list[Example], path: str | Path) -> Path:
    """2-D PCA map of the examples' codes coloured by assigned component (and by label when
    the examples have labels), with the prior's component means marked."""
    codes = codes_of(model, [ex.text for ex in examples])
    assigned = model.prior.assign(codes).tolist()
    xy, means = pca_2d(codes, model.prior.means)
    labels = [ex.label for ex in examples]
    has_labels = any(label is not None for label in labels)
    figure = Figure(figsize=(12 if has_labels else 6.5, 5.5), layout="constrained")
    panels = figure.subplots(1, 2 if has_labels else 1, squeeze=False)[0]
    _scatter_by(panels[0], xy, assigned, f"{len(examples)} codes by assigned mode", "mode")
    if has_labels:
        _scatter_by(panels[1], xy, ["none" if lab is None else lab for lab in labels],
                    "codes by label", "label")
    for ax in panels:
        ax.scatter(means[:, 0].numpy(), means[:, 1].numpy(), marker="X", s=120, color="black",
                   edgecolors="white", linewidths=1.0, zorder=3)
        for k, (x, y) in enumerate(means.tolist()):
            ax.annotate(str(k), (x, y), xytext=(5, 5), textcoords="offset points",
                        fontweight="bold")
    figure.suptitle("latent map (PCA of posterior means; X marks the prior's component means)")
    return _save(figure, path)


def plot_training_curves(metrics_path: str | Path, path: str | Path) -> Path:
    """Loss, reconstruction and regulariser over steps: train records and validation records."""
    records = read_metrics(metrics_path)
    panels = [("loss", ("loss",)), ("reconstruction (CE per token)", ("recon",)),
              ("regulariser D(Q_Z, P_Z)", ("reg", "mmd"))]
    figure = Figure(figsize=(13, 4), layout="constrained")
    axes = figure.subplots(1, len(panels))
    for ax, (title, keys) in zip(axes, panels, strict=True):
        for split, style in (("train", "-"), ("valid", "o-")):
            points = _first_key(records.get(split, []), keys)
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, style, markersize=3, label=split)
        ax.set_title(title)
        ax.set_xlabel("step")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    return _save(figure, path)


def _first_key(records: list[dict], keys: tuple[str, ...]) -> list[tuple[int, float]]:
    """(step, value) of the first of `keys` each record has, skipping records with none."""
    points = []
    for record in records:
        for key in keys:
            if isinstance(record.get(key), int | float):
                points.append((record["step"], float(record[key])))
                break
    return points


def write_plots(model: TextWAE, run_dir: str | Path, examples: list[Example]) -> list[Path]:
    """Write latent_map.png (from `examples`) and training_curves.png into `run_dir`.

    A run without metrics.jsonl gets no curves, with a warning.
    """
    run_dir = Path(run_dir)
    written = [plot_latent_map(model, examples, run_dir / LATENT_MAP_FILE)]
    metrics = run_dir / checkpoint.METRICS_FILE
    if metrics.is_file():
        written.append(plot_training_curves(metrics, run_dir / CURVES_FILE))
    else:
        warnings.warn(f"{metrics} does not exist: no training curves",
                      EvaluationWarning, stacklevel=2)
    return written
