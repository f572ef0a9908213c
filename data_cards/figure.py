"""The card's one figure: the curation funnel beside the domain x trait counts.

Drawn on a bare ``matplotlib.figure.Figure`` with the Agg canvas: headless, no pyplot
global state, and matplotlib is imported only when a figure is drawn (every
``traitdose run`` writes one, so import and drawing cost are kept small).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

FIGURE_NAME = "card.png"


def render_figure(
    funnel: list[dict[str, Any]],
    counts: dict[tuple[str, str], int],
    path: Path,
    title: str = "",
) -> Path:
    """Write the PNG to ``path``. ``counts`` maps (domain, trait) to accepted items."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), dpi=90)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, width_ratios=[3, 2])
    # Fixed margins that fit the stage names and trait labels: the constrained layout engine
    # measured every text twice per save and doubled the figure's cost (~0.1 s a version).
    fig.subplots_adjust(left=0.12, right=0.98, bottom=0.17, top=0.86 if title else 0.92, wspace=0.3)
    _draw_funnel(left, funnel)
    _draw_counts(right, counts)
    if title:
        fig.suptitle(title)
    fig.savefig(path, format="png")
    return path


def _draw_funnel(ax: Any, funnel: list[dict[str, Any]]) -> None:
    if not funnel:
        ax.text(0.5, 0.5, "no funnel recorded", ha="center", va="center")
        ax.set_axis_off()
        return
    stages = [s["stage"] for s in funnel][::-1]
    entered = [s["in"] for s in funnel][::-1]
    kept = [s["out"] for s in funnel][::-1]
    ax.barh(stages, entered, color="#d9d9d9", label="in")
    ax.barh(stages, kept, color="#3b7dd8", label="out")
    for y, (n_in, n_out) in enumerate(zip(entered, kept, strict=True)):
        ax.text(max(n_in, n_out), y, f" {n_out:,} / {n_in:,}", va="center", fontsize=8)
    ax.set_xlim(0, max(max(entered), max(kept), 1) * 1.3)
    ax.set_title("curation funnel (items out / in)")
    ax.legend(loc="lower right", fontsize=8)


def _draw_counts(ax: Any, counts: dict[tuple[str, str], int]) -> None:
    domains = sorted({d for d, _ in counts})
    traits = sorted({t for _, t in counts})
    if not counts:
        ax.text(0.5, 0.5, "no accepted items", ha="center", va="center")
        ax.set_axis_off()
        return
    grid = [[counts.get((d, t), 0) for t in traits] for d in domains]
    peak = max(max(row) for row in grid) or 1
    ax.imshow(grid, cmap="Blues", aspect="auto", vmin=0, vmax=peak)
    ax.set_xticks(range(len(traits)), traits, rotation=20, ha="right", fontsize=8)
    ax.set_yticks(range(len(domains)), domains, fontsize=8)
    for i, row in enumerate(grid):
        for j, n in enumerate(row):
            ax.text(j, i, f"{n:,}", ha="center", va="center", color="white" if n > peak / 2 else "black")
    ax.set_title("accepted items: domain x trait")
