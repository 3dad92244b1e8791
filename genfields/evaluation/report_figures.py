"""The report's qualitative figures: labelled rows of images with landmarks overlaid (Figures 6, 9 and the
appendix's Figures 1-3); Figure 5 is `genfields.editing.panel.edit_grid`."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from genfields.evaluation.plots import _pyplot
from genfields.imageio import to_uint8


LEGEND_ENTRY_IN, LEGEND_ROW_IN = 3.0, 0.25  # a legend entry's width and a legend row's height, inches


@dataclass
class Overlay:
    """Landmarks [N, 68, 2] (pixels of the row's images) drawn in one colour."""

    landmarks: np.ndarray
    colour: str
    label: str


@dataclass
class ImageRow:
    """One labelled row of N images [N, 3, H, W] in [-1, 1], with optional landmark overlays."""

    label: str
    images: torch.Tensor
    overlays: list[Overlay] = field(default_factory=list)


def plot_image_rows(rows: list[ImageRow], path: str | Path, title: str = "", tile: float = 1.6) -> Path:
    """Rows of images, one column per pair; landmarks as dots (pixel centres at +0.5, as synthface's)."""
    plt = _pyplot()
    cols = max(r.images.shape[0] for r in rows)
    width = tile * cols + 1.6
    labels = list(dict.fromkeys(ov.label for r in rows for ov in r.overlays))
    ncol = max(1, min(len(labels), int(width // LEGEND_ENTRY_IN)))
    legend_in = LEGEND_ROW_IN * -(-len(labels) // ncol)  # inches below the images for the legend's rows
    height = tile * len(rows) + 0.6 + legend_in
    fig, axes = plt.subplots(len(rows), cols, figsize=(width, height), squeeze=False)
    legend = {}
    for r, row in enumerate(rows):
        pictures = to_uint8(row.images)
        h, w = pictures.shape[1:3]
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if c >= len(pictures):
                continue
            ax.imshow(pictures[c], extent=(0, w, h, 0), interpolation="nearest")
            for ov in row.overlays:
                dots = ax.scatter(ov.landmarks[c, :, 0], ov.landmarks[c, :, 1], s=max(1.0, 24 / cols), c=ov.colour,
                                  linewidths=0)
                legend[ov.label] = dots
            ax.set_xlim(0, w)
            ax.set_ylim(h, 0)
        axes[r, 0].set_ylabel(row.label, rotation=0, ha="right", va="center", fontsize=8)
    if legend:
        fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=ncol, fontsize=8,
                   markerscale=3, frameon=False)
    if title:
        fig.suptitle(textwrap.fill(title, int(width * 11)), fontsize=9)
    fig.tight_layout(rect=(0, legend_in / height if legend else 0, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
