"""Plots of runs: training curves and quality curves, written as PNG."""

from __future__ import annotations

import json
from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def plot_gan_run(run: str | Path, out: str | Path) -> Path:
    """Losses and speed from metrics.jsonl, FD and coverage from quality.jsonl, against kimg."""
    plt = _pyplot()
    run = Path(run)
    metrics, quality = read_jsonl(run / "metrics.jsonl"), read_jsonl(run / "quality.jsonl")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    kimg = [m["kimg"] for m in metrics]
    for key in ("loss_G", "loss_D"):
        axes[0].plot(kimg, [m[key] for m in metrics], label=key, lw=0.8)
    axes[0].set(xlabel="kimg", title="losses")
    axes[0].legend()
    if quality:
        qk = [q["kimg"] for q in quality]
        axes[1].plot(qk, [q["fd"] for q in quality], "o-", label="FD (GAN vs renders)")
        axes[1].plot(qk, [q["fd_floor"] for q in quality], "--", label="FD floor (renders vs renders)")
        axes[1].set(xlabel="kimg", ylabel="FD (synthetic feature network)", yscale="log", title="FD")
        axes[1].legend()
        for key in ("yaw", "pitch", "roll"):
            axes[2].plot(qk, [q[f"{key}_std_ratio"] for q in quality], "o-", label=key)
        axes[2].axhspan(0.7, 1.3, color="green", alpha=0.1)
        axes[2].set(xlabel="kimg", ylabel="std(GAN) / std(renders)", title="pose coverage")
        axes[2].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return Path(out)


def plot_editor_run(run: str | Path, out: str | Path, smooth: int = 20) -> Path:
    """Each loss term of an editor run against the step (running mean over `smooth` log lines), per stage."""
    plt = _pyplot()
    metrics = read_jsonl(Path(run) / "metrics.jsonl")
    terms = [k for k in ("loss", "id", "lnd", "pose", "rec", "style_reg", "adv", "disc")
             if any(k in m for m in metrics)]
    fig, axes = plt.subplots(1, max(len(terms), 1), figsize=(3.2 * max(len(terms), 1), 3), squeeze=False)
    for ax, term in zip(axes[0], terms):
        for stage in ("cross", "reconstruction"):
            rows = [m for m in metrics if term in m and m.get("stage") == stage]
            if not rows:
                continue
            values = [m[term] for m in rows]
            k = max(1, min(smooth, len(values)))
            means = [sum(values[max(0, i - k + 1):i + 1]) / len(values[max(0, i - k + 1):i + 1])
                     for i in range(len(values))]
            ax.plot([m["step"] for m in rows], means, label=stage, lw=0.9)
        ax.set(xlabel="step", title=term)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return Path(out)


def plot_matched_fd(families: dict[str, list[dict]], path: str | Path, keys: tuple[str, ...] = ("identity", "pose"),
                    labels: dict[str, str] | None = None) -> Path:
    """Table 1 at matched realism: each metric against FD, one line per method family (its operating points
    joined in FD order, as the matched-FD rule interpolates them), extra single points as markers."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name, points in families.items():
            pts = sorted(points, key=lambda p: p["fd"])
            style = "o-" if len(pts) > 1 else "s"
            ax.plot([p["fd"] for p in pts], [p[key] for p in pts], style, label=name)
            for p in pts:
                if p.get("label"):
                    ax.annotate(p["label"], (p["fd"], p[key]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("FD (lower = more realistic)")
        ax.set_ylabel((labels or {}).get(key, key))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
