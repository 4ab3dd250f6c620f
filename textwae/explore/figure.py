"""The explorer's latent map as a plotly figure: held-out codes, prior means and marks.

Every held-out point carries its index into the map as `customdata`, which the page's click
handler sends back to decode that point; its hover text is the unit's text.

Plotly renders a subset of HTML (<b>, <a href>, <span style>, entities) in trace names, text
labels and hover texts, so every string that comes from the user (texts, data labels, mode
labels of the config) is HTML-escaped before it goes into the figure: it is shown as typed.
"""

from __future__ import annotations

import html
import textwrap
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.colors import qualitative

from textwae.explore.latent_map import LatentMap

COLOURS = qualitative.D3  # the tab10 colours of latent_map.png
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"  # no web font
HOVER_WIDTH = 60  # characters per line of hover text


@dataclass(frozen=True)
class Marks:
    """What a page session has drawn over the map: its last encoded text, last
    interpolation path and last clicked point."""

    encoded: tuple[tuple[float, float], str] | None = None  # (x, y), text
    path: list[tuple[tuple[float, float], str]] | None = None  # (x, y), text of each step
    clicked: int | None = None  # index into the map


def hover(text: str, *details: str) -> str:
    """Plotly hover text: the text escaped and wrapped, then its details."""
    lines = textwrap.wrap(text, HOVER_WIDTH) or [""]
    return "<br>".join([*map(html.escape, lines), *map(html.escape, details)])


def map_figure(lmap: LatentMap, colour_by: str = "mode", marks: Marks = Marks()) -> go.Figure:
    """The held-out codes coloured by mode (or by label), the prior means, then `marks`."""
    by_label = colour_by == "label" and lmap.has_labels
    groups = ([str(label) if label is not None else "no label" for label in lmap.labels]
              if by_label else [lmap.mode_names[mode] for mode in lmap.modes])
    figure = go.Figure()
    for i, group in enumerate(sorted(set(groups), key=_group_order)):
        chosen = [k for k, g in enumerate(groups) if g == group]
        figure.add_trace(go.Scatter(
            x=lmap.xy[chosen, 0].tolist(), y=lmap.xy[chosen, 1].tolist(), mode="markers",
            name=html.escape(f"{'label' if by_label else 'mode'} {group}"), customdata=chosen,
            marker={"size": 7, "opacity": 0.65, "color": COLOURS[i % len(COLOURS)]},
            hovertext=[hover(lmap.texts[k], _details(lmap, k)) for k in chosen],
            hovertemplate="%{hovertext}<extra></extra>"))
    figure.add_trace(go.Scatter(
        x=lmap.means_xy[:, 0].tolist(), y=lmap.means_xy[:, 1].tolist(), mode="markers+text",
        name="prior means", text=[html.escape(name) for name in lmap.mode_names],
        textposition="top center",
        marker={"symbol": "x", "size": 16, "color": "black", "line": {"width": 1.5,
                                                                        "color": "white"}},
        textfont={"size": 13},
        hovertext=[f"mean of mode {html.escape(name)}" for name in lmap.mode_names],
        hovertemplate="%{hovertext}<extra></extra>"))
    if marks.clicked is not None:
        k = marks.clicked
        figure.add_trace(go.Scatter(
            x=[float(lmap.xy[k, 0])], y=[float(lmap.xy[k, 1])], mode="markers", name="clicked",
            marker={"symbol": "circle-open", "size": 18, "line": {"width": 3},
                    "color": "black"},
            hovertext=[hover(lmap.texts[k], _details(lmap, k))],
            hovertemplate="%{hovertext}<extra></extra>"))
    if marks.path:
        figure.add_trace(go.Scatter(
            x=[xy[0] for xy, _ in marks.path], y=[xy[1] for xy, _ in marks.path],
            mode="lines+markers+text", name="interpolation",
            text=[str(step + 1) for step in range(len(marks.path))], textposition="top right",
            line={"color": "black", "width": 3},
            marker={"size": 11, "color": "black", "line": {"width": 1.5, "color": "white"}},
            hovertext=[hover(text, f"step {step + 1}")
                       for step, (_, text) in enumerate(marks.path)],
            hovertemplate="%{hovertext}<extra></extra>"))
    if marks.encoded is not None:
        (x, y), text = marks.encoded
        figure.add_trace(go.Scatter(
            x=[x], y=[y], mode="markers", name="your text",
            marker={"symbol": "star", "size": 20, "color": "gold",
                    "line": {"width": 1.5, "color": "black"}},
            hovertext=[hover(text, "your text")], hovertemplate="%{hovertext}<extra></extra>"))
    shown = f"{len(lmap.texts):,}" + (f" of {lmap.total:,}" if lmap.total > len(lmap.texts)
                                      else "")
    figure.update_layout(
        title={"text": f"{shown} held-out codes (PCA) by {'label' if by_label else 'mode'}",
               "x": 0.01},
        height=560, margin={"l": 40, "r": 10, "t": 50, "b": 40}, template="plotly_white",
        font={"family": FONT}, hovermode="closest", clickmode="event",
        xaxis={"title": {"text": "PC 1"}}, yaxis={"title": {"text": "PC 2"}},
        legend={"orientation": "h", "y": -0.12})
    return figure


def _details(lmap: LatentMap, k: int) -> str:
    label = lmap.labels[k]
    return f"mode {lmap.mode_names[lmap.modes[k]]}" + (f" · label {label}"
                                                       if label is not None else "")


def _group_order(group: str) -> tuple[int, int | str]:
    """Modes by index ("10 x" after "9 y"), labels alphabetically."""
    head = group.split(" ", 1)[0]
    return (0, int(head)) if head.isdigit() else (1, group)
