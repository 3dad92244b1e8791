"""Quality bars: the lines a shipped model must meet, each a measured value against a limit.

The GAN's bar is the synth64 issue's (pose coverage within 0.7-1.3 for every angle, FD falling
through training); the editor's is in `editor_card.quality_bar`. Both model cards (`gan_card`,
`editor_card`) also end with the same "What was tried" section, from `what_was_tried`.
"""

from __future__ import annotations

from dataclasses import dataclass

POSE_ANGLES = ("yaw", "pitch", "roll")


@dataclass(frozen=True)
class QualityCheck:
    """One line of a quality bar: a measured value, the limit it must meet, and whether it does."""

    name: str
    value: float
    limit: float
    higher_is_better: bool

    @property
    def passed(self) -> bool:
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    def describe(self) -> str:
        op = ">=" if self.higher_is_better else "<="
        return f"{self.name}: {self.value:.4g} {op} {self.limit:.4g} -> {'pass' if self.passed else 'FAIL'}"


def gan_quality_bar(quality: list[dict], coverage: tuple[float, float] = (0.7, 1.3)) -> list[QualityCheck]:
    """The GAN's bar from `gan-quality --run` rows (one per snapshot, in training order).

    Every pose angle's std ratio (GAN / renders) of the last snapshot lies within `coverage`, and
    the last FD is below the first one measured (FD decreased through training).
    """
    if not quality:
        raise ValueError("no quality rows: run `genfields gan-quality --run RUN` first")
    first, last = quality[0], quality[-1]
    low, high = coverage
    checks = []
    for angle in POSE_ANGLES:
        ratio = float(last[f"{angle}_std_ratio"])
        checks += [QualityCheck(f"{angle} std ratio", ratio, low, True),
                   QualityCheck(f"{angle} std ratio", ratio, high, False)]
    checks.append(QualityCheck(f"FD at {last['kimg']} kimg (against {first['kimg']} kimg)", float(last["fd"]),
                               float(first["fd"]), False))
    return checks


def what_was_tried(notes: str) -> str:
    """A model card's closing section of notes (markdown, as written), or nothing without notes."""
    return f"\n## What was tried\n\n{notes.strip()}\n" if notes.strip() else ""
