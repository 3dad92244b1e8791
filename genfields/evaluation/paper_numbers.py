"""The paper's published numbers, transcribed from paper/generative-fields-paper.md (section 4 and the
appendix). Nothing else in genfields writes a paper number: every "paper" column of the report
comes from here. The one exception is appendix Table 1, the printed generative fields, which lives
in `genfields.fields` (a lower layer that needs it) and is re-exported here.

Units are the paper's: FID on FFHQ256, identity = cosine similarity, expression = landmark
distance / resolution, pose = MSE of the Euler angles (the paper does not state the unit of its
3DDFA angles), fields and face size in pixels of a 256 x 256 image.
"""

from __future__ import annotations

from genfields.fields import APPENDIX_TABLE_1  # noqa: F401  (appendix Table 1, kept with the fields it describes)

RESOLUTION = 256

# Table 1: comparison with previous methods (1,000 random pairs). "Ours" is the final method.
TABLE_1: dict[str, dict[str, float]] = {
    "LORD": {"fid": 23.08, "identity": 0.20, "expression": 0.085, "pose": 13.34},
    "FSGAN": {"fid": 8.90, "identity": 0.35, "expression": 0.013, "pose": 6.73},
    "IDDISEN": {"fid": 4.28, "identity": 0.60, "expression": 0.017, "pose": 9.74},
    "Ours": {"fid": 4.89, "identity": 0.82, "expression": 0.017, "pose": 1.67},
}

# Table 2: ablation, each row on top of the previous one; keys are genfields' configuration names.
TABLE_2: dict[str, dict[str, float]] = {
    "default": {"fid": 3.65, "identity": 0.84, "expression": 0.026, "pose": 3.29},
    "no-concat": {"fid": 8.52, "identity": 0.77, "expression": 0.016, "pose": 1.62},
    "style-reg": {"fid": 4.48, "identity": 0.83, "expression": 0.022, "pose": 2.33},
    "paper": {"fid": 4.89, "identity": 0.82, "expression": 0.017, "pose": 1.67},
}
TABLE_2_LABELS = {"default": "default configuration", "no-concat": "- feature concatenation",
                  "style-reg": "+ style regularization", "paper": "+ Euler angle loss"}

# Table 3: control units (inclusive conv range), their printed generative fields (min, max), and
# the mean metrics of 100 tests.
TABLE_3: list[dict] = [
    {"config": 1, "convs": (0, 7), "gfs": (43, 506), "identity": 0.75, "expression": 0.016, "pose": 0.99},
    {"config": 2, "convs": (0, 4), "gfs": (123, 506), "identity": 0.74, "expression": 0.019, "pose": 1.04},
    {"config": 3, "convs": (0, 2), "gfs": (251, 506), "identity": 0.76, "expression": 0.028, "pose": 0.67},
    {"config": 4, "convs": (3, 6), "gfs": (59, 187), "identity": 0.73, "expression": 0.017, "pose": 1.21},
    {"config": 5, "convs": (6, 11), "gfs": (7, 59), "identity": 0.69, "expression": 0.033, "pose": 0.84},
]

# Section 4.2.2: the average face size (landmarks 1 and 17) of FFHQ256 and the generated set.
FACE_SIZE_PX = 141.68

# Section 4.2.1: the sparsity experiment's settings and what Figure 8 shows.
HISTOGRAM_BINS = 20
HIGH_FUNCTIONAL = 0.6
REUSE_TOP_K = 50
REUSE_TESTS = 10
REUSE_UNION_SIZE = 94  # |T_u| of the paper's 10 tests
REUSED_DIMENSIONS = ("dS_448", "dS_518", "dS_645", "dS_747", "dS_776")  # 1-based flat indices into S (4928)
STYLE_DIM = 4928
