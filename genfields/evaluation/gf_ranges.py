"""Table 3's control units for any generator: five conv ranges whose generative fields relate to the
average face size as the paper's five do.

The paper's configurations (paper256, face 141.68 px) span fields from larger than the face to
much smaller. For another generator we keep each configuration's two end fields *relative to the
face*: for paper configuration (a, b) the targets are r_max = gf(conv a) / face and
r_min = gf(conv b) / face. Among all contiguous ranges conv i .. conv j of our generator we pick
the one that (1) puts both end fields on the same side of the face size as the paper's and
(2) minimises (ln(gf_i / face / r_max))^2 + (ln(gf_j / face / r_min))^2; ties go to the lower i,
then the lower j. If no range meets (1), the closest by (2) is taken and `sides_match` is False.
Fields are Eq. 1 sizes (the paper's own definition), for ours and for paper256 alike.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from genfields.errors import ConfigError
from genfields.evaluation.paper_numbers import FACE_SIZE_PX, TABLE_3

JAW_FIRST, JAW_LAST = 0, 16  # iBUG landmarks 1 and 17 (0-based)


def face_sizes(landmarks: np.ndarray) -> np.ndarray:
    """Face size of each face [N, 68, 2]: the distance between landmarks 1 and 17 (the temples), in pixels."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ConfigError(f"expected landmarks of shape [N, 68, 2], got {list(lm.shape)}")
    return np.linalg.norm(lm[:, JAW_LAST] - lm[:, JAW_FIRST], axis=1)


@dataclass(frozen=True)
class GFRange:
    """One Table 3 configuration mapped onto a generator."""

    config: int
    lo: int  # first conv (largest field)
    hi: int  # last conv (smallest field)
    gf_max: int
    gf_min: int
    ratio_max: float  # gf_max / face
    ratio_min: float
    paper_ratio_max: float
    paper_ratio_min: float
    sides_match: bool

    @property
    def convs(self) -> str:
        return f"conv{self.lo}" if self.lo == self.hi else f"conv{self.lo}-conv{self.hi}"

    def to_dict(self) -> dict:
        return {**asdict(self), "convs": self.convs}


def select_gf_ranges(fields: list[int], face: float, paper_fields: list[int], paper_face: float = FACE_SIZE_PX,
                     paper_configs: list[dict] = TABLE_3) -> list[GFRange]:
    """The conv range of each paper configuration for a generator with Eq. 1 `fields` (conv0 first) and `face`."""
    if face <= 0 or paper_face <= 0:
        raise ConfigError(f"face sizes must be positive, got {face} and {paper_face}")
    n = len(fields)
    chosen = []
    for cfg in paper_configs:
        a, b = cfg["convs"]
        t_max, t_min = paper_fields[a] / paper_face, paper_fields[b] / paper_face
        best, best_key = None, None
        for i in range(n):
            for j in range(i, n):
                r_max, r_min = fields[i] / face, fields[j] / face
                sides = (r_max > 1) == (t_max > 1) and (r_min > 1) == (t_min > 1)
                cost = math.log(r_max / t_max) ** 2 + math.log(r_min / t_min) ** 2
                key = (not sides, round(cost, 12), i, j)
                if best_key is None or key < best_key:
                    best_key = key
                    best = GFRange(cfg["config"], i, j, fields[i], fields[j], r_max, r_min, t_max, t_min, sides)
        chosen.append(best)
    return chosen
