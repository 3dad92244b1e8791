"""The paper's section 4.2.1: how sparse the style control signal dS is, and how often the same
channels drive different edits (Figures 7 and 8).

- Figure 7: per test, |dS| divided by its maximum, histogrammed in 20 bins over [0, 1]; the mean
  count per bin over tests with its standard deviation, on a log scale, with the count-1 line and
  the 0.6 "high-functional" threshold.
- Figure 8: the top-50 |dS| channels of each test (Eq. 13), their union T_u (Eq. 15), and the
  reuse rate of each channel, the share of tests whose top 50 hold it (Eq. 14), as a heatmap of
  tests x T_u (a cell shows the channel's reuse rate where the test uses it, 0 elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HIGH_FUNCTIONAL = 0.6


def normalised_magnitudes(dS: np.ndarray) -> np.ndarray:
    """|dS| / max |dS| per test (row); a test with dS = 0 stays 0."""
    a = np.abs(np.asarray(dS, dtype=np.float64))
    peak = a.max(axis=1, keepdims=True)
    return np.divide(a, peak, out=np.zeros_like(a), where=peak > 0)


@dataclass
class SparsityHistogram:
    edges: np.ndarray  # [bins + 1]
    counts: np.ndarray  # [tests, bins]

    @property
    def mean(self) -> np.ndarray:
        return self.counts.mean(axis=0)

    @property
    def std(self) -> np.ndarray:
        return self.counts.std(axis=0)

    def share_above(self, threshold: float = HIGH_FUNCTIONAL) -> float:
        """Mean share of dimensions whose normalised magnitude is at least `threshold`."""
        keep = self.edges[:-1] >= threshold - 1e-12
        return float(self.counts[:, keep].sum(axis=1).mean() / self.counts.sum(axis=1).mean())


def sparsity_histogram(dS: np.ndarray, bins: int = 20) -> SparsityHistogram:
    a = normalised_magnitudes(dS)
    edges = np.linspace(0.0, 1.0, bins + 1)
    counts = np.stack([np.histogram(row, bins=edges)[0] for row in a]).astype(np.float64)
    return SparsityHistogram(edges, counts)


@dataclass
class Reuse:
    union: np.ndarray  # [U] flat indices of T_u, ascending
    rate: np.ndarray  # [U] reuse rate of each channel of T_u
    matrix: np.ndarray  # [tests, U]: the rate where the test's top-k holds the channel, else 0
    top: np.ndarray  # [tests, k] each test's top-k channels, largest |dS| first


def top_channels(dS: np.ndarray, k: int = 50) -> np.ndarray:
    """Eq. 13: the k channels of largest |dS| per test, largest first (ties: lower index first)."""
    a = np.abs(np.asarray(dS, dtype=np.float64))
    return np.argsort(-a, axis=1, kind="stable")[:, :k]


def reuse(dS: np.ndarray, k: int = 50) -> Reuse:
    top = top_channels(dS, k)
    union = np.unique(top)
    member = np.stack([np.isin(union, row) for row in top])  # [tests, U]
    rate = member.mean(axis=0)
    return Reuse(union=union, rate=rate, matrix=member * rate[None, :], top=top)


def name_channels(layout, channels: np.ndarray) -> list[dict]:
    """Each flat channel in the paper's notation (dS_448, 1-based), StyleSpace (2_6) and its layer."""
    out = []
    for flat in channels:
        layer, channel = layout.locate(int(flat))
        out.append({"flat": int(flat), "paper": layout.format_index(int(flat), "paper"),
                    "stylespace": layout.format_index(int(flat), "stylespace"), "layer": layer.name,
                    "channel": channel, "gf": layer.gf})
    return out


def plot_sparsity(hist: SparsityHistogram, path, title: str = "") -> None:
    from genfields.evaluation.plots import _pyplot

    plt = _pyplot()
    centres = (hist.edges[:-1] + hist.edges[1:]) / 2
    fig, ax = plt.subplots(figsize=(7, 4))
    mean = np.maximum(hist.mean, 1e-3)
    ax.bar(centres, mean, width=hist.edges[1] - hist.edges[0], yerr=hist.std, capsize=2, color="#4c72b0",
           edgecolor="white", error_kw={"lw": 0.8})
    ax.axhline(1.0, color="red", ls="--", lw=1, label="count 1")
    ax.axvline(HIGH_FUNCTIONAL, color="black", ls=":", lw=1, label=f"high-functional ({HIGH_FUNCTIONAL})")
    ax.set(yscale="log", xlabel="normalised |dS|", ylabel=f"mean count over {hist.counts.shape[0]} tests",
           title=title or "Sparsity of the style control signal")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def labelled_columns(rate: np.ndarray, count: int) -> np.ndarray:
    """Up to `count` of the most reused columns, kept apart so that their tick labels do not overlap.

    Columns are taken by decreasing rate (ties: left first), skipping any closer than
    len(rate) / count to one already taken; returned in ascending order.
    """
    gap = len(rate) / max(count, 1)
    chosen: list[int] = []
    for i in np.argsort(-np.asarray(rate), kind="stable"):
        if len(chosen) == count:
            break
        if all(abs(int(i) - j) >= gap for j in chosen):
            chosen.append(int(i))
    return np.array(sorted(chosen), dtype=int)


def plot_reuse(stats: Reuse, layout, path, images=None, label_top: int = 8) -> None:
    """Heatmap of tests x T_u (Figure 8); `images` [tests, 3, H, W] in [-1, 1] are drawn above it."""
    from genfields.evaluation.plots import _pyplot
    from genfields.imageio import to_uint8

    plt = _pyplot()
    tests = stats.matrix.shape[0]
    rows = 2 if images is not None else 1
    fig = plt.figure(figsize=(max(8, 0.12 * len(stats.union)), 2.2 * rows + 2))
    grid = fig.add_gridspec(rows, tests if images is not None else 1, height_ratios=[1, 2.5][-rows:])
    if images is not None:
        for i, img in enumerate(to_uint8(images)):
            ax = fig.add_subplot(grid[0, i])
            ax.imshow(img)
            ax.set_title(f"test {i + 1}", fontsize=7)
            ax.axis("off")
    ax = fig.add_subplot(grid[rows - 1, :])
    im = ax.imshow(stats.matrix, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.set(xlabel=f"channels of T_u ({len(stats.union)}, ascending flat index)", ylabel="test",
           yticks=range(tests), yticklabels=[str(i + 1) for i in range(tests)])
    busiest = labelled_columns(stats.rate, label_top)
    names = name_channels(layout, stats.union[busiest])
    ax.set_xticks(busiest, [f"{n['paper']}\n{n['stylespace']}" for n in names], fontsize=6, rotation=90)
    fig.colorbar(im, ax=ax, label="reuse rate")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
