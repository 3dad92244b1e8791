"""`genfields reproduce`: the paper's experiments (section 4 and the appendix) on a preset's models, written
as a report: index.md and index.html, every figure as PNG, every number as JSON.

    from genfields.evaluation.reproduce import reproduce
    summary = reproduce("synth64", Path("report"), quick=True)

Steps: the average face size (landmarks 1 and 17 of the attribute set), the generative fields of
every layer (appendix Table 1, Figure 2), Table 3's control units chosen relative to the face
(`gf_ranges`), Tables 1-3 (`genfields.editing.evaluate`), Figures 7 and 8 (`sparsity`), the
qualitative Figures 5, 6, 9 and appendix Figures 1-3, and the paper's claims checked on the
numbers (`claims`). Editors come from `report_editors.EditorSource`. With `device` the editors,
edits and quick fine-tunes run there; the generative fields are measured on a CPU copy of G
(float64), and every number is brought back to the CPU.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from genfields.devices import module_device, resolve_device
from genfields.editing.dataset import attribute_images
from genfields.editing.editor import Editor, editor_folder, shipped_editors
from genfields.editing.evaluate import PairValues, SharedPairs, evaluate_editor, evaluate_pairs, landmark_disagreement
from genfields.editing.pair_optimum import PAIR_OPTIMUM_FILE, PairOptimumConfig, PairOptimumEditor, SolvedPairs
from genfields.editing.panel import edit_grid
from genfields.editing.presets import EditingPreset, get_preset
from genfields.errors import ConfigError
from genfields.evaluation import claims, report_rules
from genfields.evaluation import paper_numbers as paper
from genfields.evaluation.diagnosis import diagnose
from genfields.evaluation.gf_ranges import face_sizes, select_gf_ranges
from genfields.evaluation.plots import plot_matched_fd
from genfields.evaluation.report_editors import (EXTENSION_NAMES, OPERATING_POINTS, REQUIRED_NAMES, TABLE2_NAMES,
                                                 EditorSource, ReportEditor, family_of, shown_path)
from genfields.evaluation.report_changes import compare_reports, read_report
from genfields.evaluation.report_figures import ImageRow, Overlay, plot_image_rows
from genfields.evaluation.sparsity import name_channels, plot_reuse, plot_sparsity, reuse, sparsity_histogram
from genfields.fields import exact_field_intervals, figure2_layers
from genfields.stylegan2.field_measurement import field_table, plot_generative_fields
from genfields.imageio import save_image
from genfields.perception import FeatureNetwork, PerceptionSet
from genfields.perception.realism_net import SHIPPED_NAME as REALISM_NAME
from genfields.perception.realism_net import shipped_realism_network
from genfields.perception.judges import PRIMARY_POSE_JUDGE, Judges, judges_available, load_judges, render_pose_floor
from genfields.stylegan2 import StyleLayout, seed_to_z


@dataclass(frozen=True)
class ReportSizes:
    """How many pairs, tests and steps a report uses."""

    pairs: int  # Tables 1 and 2 (the paper: 1,000)
    tests: int  # Table 3 (the paper: 100)
    sparsity_tests: int  # Figure 7: one identity, this many attribute images
    reuse_tests: int  # Figure 8 (the paper: 10)
    top_k: int  # Eq. 13 (the paper: 50)
    face_images: int  # attribute images measured for the face size
    steps: int  # quick fine-tune steps
    dataset: tuple[int, int]  # identities and attributes of the quick fine-tunes' generated set
    pair_steps: int = 60  # Adam steps of the per-pair optimum row of Table 1 (0: no such row)
    pair_pairs: int = 100  # pairs of that row (0.04 s per pair and step on a core: docs/reproduce.md)
    batch: int = 50
    grid: tuple[int, int] = (4, 6)  # Figure 5: identities x attribute images
    panels: int = 4  # pairs in Figures 6, 9 and the appendix figures
    effective_channels: int = 16  # channels averaged per layer for the effective fields
    fd_resamples: int = 200  # bootstrap draws of each FD and KID interval (means: 2,000)
    style_samples: int = 2000  # generated styles whose per-channel std scales Figure 7's null

    def __post_init__(self) -> None:
        for name in ("pairs", "tests", "sparsity_tests", "reuse_tests", "top_k", "face_images", "batch", "panels"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.pairs < 2 or self.tests < 2:
            raise ConfigError("pairs and tests must be at least 2 (FD needs a covariance)")
        if self.reuse_tests > self.sparsity_tests:
            raise ConfigError("the reuse tests are the first of the sparsity tests: need reuse_tests <= sparsity_tests")


FULL = ReportSizes(pairs=1000, tests=100, sparsity_tests=1000, reuse_tests=10, top_k=50, face_images=1000, steps=0,
                   dataset=(0, 0))
QUICK = ReportSizes(pairs=150, tests=40, sparsity_tests=200, reuse_tests=10, top_k=50, face_images=200, steps=200,
                    dataset=(480, 160), grid=(3, 5), effective_channels=4, pair_steps=10, pair_pairs=150,
                    fd_resamples=100, style_samples=500)
TEST = ReportSizes(pairs=6, tests=4, sparsity_tests=8, reuse_tests=4, top_k=10, face_images=8, steps=2,
                   dataset=(12, 6), batch=6, grid=(2, 3), panels=2, effective_channels=2, pair_steps=2,
                   pair_pairs=4, fd_resamples=10, style_samples=20)
PAIR_OPTIMUM = "per-pair optimum"
REPORT_POSE_JUDGE = "3ddfa"  # the real 3DDFA_V2 network: a pose judge nobody here trained, beside ours


def report_sizes(preset: str, quick: bool, **overrides) -> ReportSizes:
    """The sizes of a preset's report (`tiny16` always uses the test sizes), with overrides (None: keep)."""
    base = TEST if preset == "tiny16" else (QUICK if quick else FULL)
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def _mean_std(values: np.ndarray) -> dict:
    return {"mean": float(values.mean()), "std": float(values.std())}


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=1, default=float) + "\n")


def reproduce(preset_name: str, out: Path, quick: bool = False, editors: Path | None = None,
              dataset: Path | None = None, model: str | None = None, seed: int = 0,
              sizes: ReportSizes | None = None, progress: bool = False, command: str = "",
              device: str | torch.device = "cpu", compare_with: Path | None = None) -> dict:
    """Run every experiment of the report on `device` and write it to `out`; returns what run.json holds.
    With `compare_with` (a previous report folder) the report also says what changed from it."""
    start = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str, t0: float) -> float:
        timings[name] = round(time.monotonic() - t0, 1)
        return time.monotonic()

    device = resolve_device(device)
    preset = get_preset(preset_name)
    preset.require()  # one error naming every missing download, before any work
    sizes = sizes or report_sizes(preset_name, quick)
    previous = read_report(compare_with) if compare_with is not None else None  # read before `out` is written
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    source = EditorSource(preset, out / "work", editors, quick, sizes.steps, dataset, sizes.dataset, model, seed,
                          progress, device)
    if not quick:
        source.require(REQUIRED_NAMES)  # one error naming every missing editor, before any work
    t = time.monotonic()
    base = source.get("paper")
    G, nets = base.editor.G, base.editor.nets
    layout, res = G.layout, G.config.img_resolution
    generator = model or base.editor.meta.get("generator", preset.generator)
    render_seed = preset.eval_render_seed + seed
    t = lap("base editor", t)

    # --- the average face size and the generative fields ------------------------------------------
    face = measure_face_size(preset, nets, res, sizes.face_images, render_seed, sizes.batch)
    G_fields = G if device.type == "cpu" else copy.deepcopy(G).cpu()  # measured in float64 on the CPU
    rows = field_table(layout, G_fields, measure=True, effective=not generator.startswith("random:"),
                       channels=sizes.effective_channels, seed=seed)
    for row in rows:
        row["gf_over_face"] = row["gf"] / face["mean_px"]
    paper_layout = StyleLayout.from_arch("paper256")
    paper_exact = exact_field_intervals(paper_layout)
    paper_rows = [{"name": lay.name, "s_index": lay.s_index, "resolution": lay.resolution, "channels": lay.channels,
                   "gf_printed": paper.APPENDIX_TABLE_1[lay.name], "gf": lay.gf, "gf_exact": paper_exact[lay.name].size,
                   "gf_over_face": lay.gf / paper.FACE_SIZE_PX} for lay in paper_layout]
    fig2 = figure2_layers(layout)
    with torch.no_grad():
        w, S = base.editor.identity_styles(seed_to_z(seed, G.z_dim))
        sample = base.editor.synthesize(S, w).cpu()
    plot_generative_fields(sample[0], rows, fig2, out / "figure2_generative_fields.png",
                           title=f"Eq. 1 (solid), exact (dashed), effective (dotted); average face {face['mean_px']:.1f}"
                                 f" px of {res}")
    ranges = select_gf_ranges([lay.gf for lay in layout], face["mean_px"], [lay.gf for lay in paper_layout])
    by_name = {row["name"]: row for row in rows}
    table3_ranges = [{**r.to_dict(), "gf_exact_max": by_name[f"conv{r.lo}"]["gf_exact"],
                      "gf_exact_min": by_name[f"conv{r.hi}"]["gf_exact"]} for r in ranges]
    t = lap("face size and fields", t)

    # --- Tables 1 and 2 -------------------------------------------------------------------------------
    judges = (load_judges(preset.perception, device, pose=REPORT_POSE_JUDGE)
              if judges_available(preset.perception) else None)
    realism_net = shipped_realism_network() if preset.perception == "synth" else None
    shared = SharedPairs()  # every editor is scored on the same pairs: their identity side is computed once
    evals, pair_values = {}, {}
    for name in ("paper", "wspace", *[n for n in TABLE2_NAMES if n != "paper"]):
        evals[name], pair_values[name] = evaluate_row(source.get(name).editor, preset, sizes, seed, progress, judges,
                                                      shared, realism_net)
    for name in (*EXTENSION_NAMES, *OPERATING_POINTS):  # optional rows: only editors that were trained
        found = source.find(name)
        if found is not None:
            evals[name], pair_values[name] = evaluate_row(found.editor, preset, sizes, seed, progress, judges, shared,
                                                          realism_net)
    if sizes.pair_steps:
        evals[PAIR_OPTIMUM] = evaluate_pair_optimum(base, preset, sizes, seed, progress, judges, shared)
    table1 = table1_numbers(evals)
    table2 = {name: evals[name]["method"] for name in TABLE2_NAMES}
    table2_extensions = {name: evals[name]["method"] for name in (*EXTENSION_NAMES, PAIR_OPTIMUM) if name in evals}
    t = lap("tables 1 and 2", t)
    plot_matched_fd({f"{fam} family": [{**table1["rows"][n], "label": n} for n in names]
                     for fam, names in table1["families"].items()}
                    | {"unedited": [table1["rows"]["unedited"]]}
                    | {f"{n} (E_attr frozen, not in the family)": [table1["rows"][n]] for n in table1["outside_family"]}
                    | {f"{n} (ours, beyond the paper)": [table1["rows"][n]] for n in EXTENSION_NAMES
                       if n in table1["rows"]}
                    | ({f"{PAIR_OPTIMUM} ({table1['per_pair_pairs']} pairs)": [table1["rows"][PAIR_OPTIMUM]]}
                       if PAIR_OPTIMUM in table1["rows"] else {}),
                    out / "table1_matched_fd.png", labels={"identity": f"identity ({judged_name(table1)}) ↑",
                                                         "pose": f"pose MSE ({judged_name(table1)}) ↓"})

    # --- Table 3 --------------------------------------------------------------------------------------
    table3, table3_unedited, table3_leak, table3_values, shared = {}, {}, {}, {}, SharedPairs()
    for r in ranges:
        ed = source.get(f"gf{r.config}", r.convs).editor
        result, table3_values[str(r.config)] = evaluate_pairs(ed, preset, sizes.tests, seed, sizes.batch,
                                                              progress=progress, judges=judges, shared=shared,
                                                              realism_net=realism_net)
        table3[r.config], table3_unedited = result["method"], result["unedited"]  # the same tests for every config
        if "pose_leak" in result:
            table3_leak[str(r.config)] = result["pose_leak"]["method"]
    t = lap("table 3", t)

    # --- Figures 7 and 8: one identity, many attribute images ------------------------------------------
    z_one = seed_to_z(seed, G.z_dim)
    deltas, reuse_images = [], []
    for s0 in range(0, sizes.sparsity_tests, sizes.batch):
        n = min(sizes.batch, sizes.sparsity_tests - s0)
        result = base.editor.edit(z_one.expand(n, -1),
                                  attribute_images(preset.attributes, n, res, render_seed, s0)).cpu()
        deltas.append(result.delta.double().numpy())
        reuse_images.append(result.image)
    dS = np.concatenate(deltas)
    hist = sparsity_histogram(dS, paper.HISTOGRAM_BINS)
    stats = reuse(dS[:sizes.reuse_tests], sizes.top_k)
    plot_sparsity(hist, out / "figure7_sparsity.png",
                  title=f"Normalised |dS|: one identity, {sizes.sparsity_tests} attribute images ({layout.dim} dims)")
    plot_reuse(stats, layout, out / "figure8_reuse.png", images=torch.cat(reuse_images)[:sizes.reuse_tests])
    figure7 = {"tests": sizes.sparsity_tests, "dim": layout.dim, "bins": paper.HISTOGRAM_BINS,
               "edges": hist.edges.tolist(), "mean": hist.mean.tolist(), "std": hist.std.tolist(),
               "share_high_functional": hist.share_above(paper.HIGH_FUNCTIONAL),
               "high_functional_per_test": _mean_std(hist.counts[:, hist.edges[:-1] >= paper.HIGH_FUNCTIONAL - 1e-12]
                                                     .sum(axis=1)),
               "gaussian_share_high_functional": claims.gaussian_share_above(layout.dim)}
    figure8 = reuse_summary(stats, layout, paper_layout, face["mean_px"])
    style_std = style_spread(base.editor, sizes.style_samples, seed, sizes.batch)
    figure7["style_std"] = {"samples": sizes.style_samples, "min": float(style_std.min()),
                            "max": float(style_std.max()), "mean": float(style_std.mean())}
    t = lap("figures 7 and 8", t)

    # --- qualitative figures ------------------------------------------------------------------------------
    figure_landmarks = qualitative_figures(source, ranges, preset, sizes, seed, out, judges)
    lap("qualitative figures", t)

    # --- claims and files ---------------------------------------------------------------------------------
    verdicts = {
        "table1": claims.table1_verdict([table1["rows"][n] for n in table1["families"]["paper"]],
                                        [table1["rows"][n] for n in table1["families"]["wspace"]]).to_dict(),
        "table1_paper": claims.table1_verdict(paper.TABLE_1["Ours"], paper.TABLE_1["IDDISEN"]).to_dict(),
        **({"table1_every_w": claims.table1_verdict(  # the rule with the frozen-E_attr rows kept in the W family
            [table1["rows"][n] for n in table1["families"]["paper"]],
            [table1["rows"][n] for n in table1["families"]["wspace"] + table1["outside_family"]]).to_dict()}
           if table1["outside_family"] else {}),
        "table2": claims.table2_verdict(table2).to_dict(),
        "table2_paper": claims.table2_verdict(paper.TABLE_2).to_dict(),
        "table3": claims.table3_verdict(table3).to_dict(),
        "table3_paper": claims.table3_verdict({r["config"]: r for r in paper.TABLE_3}).to_dict(),
        "sparsity": claims.sparsity_verdict(hist, layout.dim).to_dict(),
        "reuse": claims.reuse_verdict(stats, layout.dim).to_dict(),
        "reuse_paper": claims.union_verdict(paper.REUSE_UNION_SIZE, paper.STYLE_DIM, paper.REUSE_TOP_K,
                                            paper.REUSE_TESTS).to_dict(),
    }
    numbers = {
        "face_size": face,
        "fields": {"ours": rows, "paper256": paper_rows, "figure2_layers": fig2},
        "table1": {**table1, "paper": paper.TABLE_1, "pairs": sizes.pairs,
                   "matched_fd_rule": claims.MATCHED_FD_RULE.format(tol=claims.FD_TOLERANCE)},
        "table2": {"rows": table2, "extensions": table2_extensions, "unedited": evals["paper"]["unedited"],
                   "pose_leak": {name: evals[name]["pose_leak"]["method"] for name in TABLE2_NAMES
                                 if "pose_leak" in evals[name]},
                   "paper": paper.TABLE_2, "pairs": sizes.pairs},
        "table3": {"rows": {str(k): v for k, v in table3.items()}, "unedited": table3_unedited, "ranges": table3_ranges,
                   "pose_leak": table3_leak, "paper": paper.TABLE_3, "tests": sizes.tests},
        "figure7": figure7,
        "figure8": figure8,
        "claims": verdicts,
    }
    noise = noise_rules(pair_values, table3_values, table1, dS, style_std, sizes, out)
    numbers["rules"] = noise["verdicts"]
    numbers["table1"]["intervals"] = noise["intervals"]["table1"]
    numbers["table1"]["noise_families"] = noise["families"]
    numbers["table2"]["intervals"] = noise["intervals"]["table2"]
    numbers["table3"]["intervals"] = noise["intervals"]["table3"]
    numbers["table1"]["realism_features"] = (f"the independent realism network ({REALISM_NAME}): fd_realism, "
                                             "kid_realism" if realism_net is not None else
                                             "the FD network's (E_attr, synth_attributes): no independent realism "
                                             "network is shipped")
    if judges is not None and PRIMARY_POSE_JUDGE in judges.extra_pose and preset.attributes == "synthface":
        numbers["table1"]["pose_judge_floor"] = {
            name: render_pose_floor(net, sizes.face_images, res, render_seed, sizes.batch)
            for name, net in (("3ddfa", judges.extra_pose[PRIMARY_POSE_JUDGE]), ("judge", judges.landmarks))}
    t = lap("intervals and noise rules", t)
    numbers["diagnosis"] = diagnose(numbers)
    if previous is not None:
        numbers["changes"] = compare_reports(previous, numbers, {"editors": source.origins(),
                                                                 "editor_weights": source.weights()})
    for key, value in numbers.items():
        _write_json(out / f"{key}.json", value)
    run = {"preset": preset.name, "quick": quick, "seed": seed, "generator": generator, "command": command,
           "sizes": asdict(sizes), "editors": source.origins(), "editor_weights": source.weights(),
           "editor_training": source.training(), "figure_landmarks": figure_landmarks,
           "compared_with": str(compare_with) if compare_with is not None else None,
           "timings_s": timings, "total_s": round(time.monotonic() - start, 1)}
    _write_json(out / "run.json", run)
    from genfields.evaluation.report_text import write_report

    write_report(out, numbers, run)
    return run


def evaluate_row(editor: Editor, preset: EditingPreset, sizes: ReportSizes, seed: int, progress: bool,
                 judges: Judges | None, shared: SharedPairs,
                 realism_net: FeatureNetwork | None = None) -> tuple[dict, PairValues]:
    """One editor of Tables 1-2 on the report's pairs, with its per-pair values; for the W baseline also
    whether its E_attr was trained with it (IDDISEN) or frozen (`attribute_encoder`), which the report shows
    beside the row."""
    result, values = evaluate_pairs(editor, preset, sizes.pairs, seed, sizes.batch, progress=progress,
                                    judges=judges, shared=shared, realism_net=realism_net)
    if editor.config.kind == "wspace":
        result["attribute_encoder"] = "trained" if editor.config.train_attributes else "frozen"
    return result, values


def style_spread(editor: Editor, count: int, seed: int, batch: int = 50) -> np.ndarray:
    """The per-channel standard deviation of S over `count` generated identities (the editor's truncation):
    the scale of Figure 7's null (docs/rules.md)."""
    z = torch.randn(count, editor.G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        styles = torch.cat([editor.identity_styles(chunk)[1].double().cpu() for chunk in z.split(batch)])
    return styles.std(dim=0).numpy()


def noise_rules(pair_values: dict[str, PairValues], table3_values: dict[str, PairValues], table1: dict,
                dS: np.ndarray, style_std: np.ndarray, sizes: ReportSizes, out: Path) -> dict:
    """The verdicts under the noise rules (`report_rules`, docs/rules.md), every row's 95% intervals, and the
    per-pair values of every row written to `out/pairs/` (without FD features, which are most of the bytes)."""
    rows = {"ours": "paper"}
    named = {rows.get(n, n): n for n in table1["rows"] if rows.get(n, n) in pair_values}
    comparisons = report_rules.Comparisons(pair_values, sizes.fd_resamples)
    t1, families = report_rules.table1_verdict(comparisons, [rows.get(n, n) for n in table1["families"]["paper"]],
                                               [rows.get(n, n) for n in table1["families"]["wspace"]])
    t3 = report_rules.Comparisons(table3_values, sizes.fd_resamples)
    verdicts = {"table1": t1.to_dict(), "table2": report_rules.table2_verdict(comparisons).to_dict(),
                "table3": report_rules.table3_verdict(t3).to_dict(),
                "sparsity": report_rules.sparsity_verdict(dS, style_std).to_dict(),
                "paper": report_rules.paper_verdicts()}
    by_editor = {name: values.intervals(realism_resamples=sizes.fd_resamples, sides=("method",))["method"]
                 for name, values in pair_values.items()}
    intervals = {"table1": {row: by_editor[editor] for editor, row in named.items()},
                 "table2": {name: by_editor[name] for name in TABLE2_NAMES}}
    intervals["table1"]["unedited"] = pair_values["paper"].intervals(realism_resamples=sizes.fd_resamples,
                                                                    sides=("unedited",))["unedited"]
    intervals["table3"] = {k: v.intervals(realism_resamples=sizes.fd_resamples, sides=("method",))["method"]
                           for k, v in table3_values.items()}
    (out / "pairs").mkdir(exist_ok=True)
    for name, values in pair_values.items():
        values.save(out / "pairs" / f"{name}.pairs.npz", features=False)
    for config, values in table3_values.items():
        values.save(out / "pairs" / f"gf{config}.table3.pairs.npz", features=False)
    return {"verdicts": verdicts, "intervals": intervals, "families": families}


def stored_pair_optimum(optimum: PairOptimumEditor, folders: list[Path | None], preset: str, seed: int,
                        pairs: int) -> tuple[SolvedPairs | None, str]:
    """The first store of per-pair optima (`PAIR_OPTIMUM_FILE` in one of `folders`) made under `optimum`'s
    settings for these pairs and holding at least `pairs` of them, read-only; else None. With why, for run.json."""
    key = optimum.store_key(preset, seed)
    why = "no stored per-pair optimum"
    for folder in folders:
        path = folder / PAIR_OPTIMUM_FILE if folder is not None else None
        if path is None or not path.is_file():
            continue
        try:
            solved = SolvedPairs.load(path, key)
        except ConfigError as exc:
            why = str(exc)
            continue
        if len(solved) < pairs:
            why = f"{shown_path(path)} holds {len(solved)} pairs, fewer than {pairs}"
            continue
        solved.path = None  # a report never rewrites it
        return solved, f"stored: {shown_path(path)}"
    return None, why


def evaluate_pair_optimum(base: ReportEditor, preset: EditingPreset, sizes: ReportSizes, seed: int, progress: bool,
                          judges: Judges | None, shared: SharedPairs) -> dict:
    """The per-pair optimum row from the paper editor's G and losses. Its Adam steps cost 60 times an edit's
    passes, forward and backward (1,000 pairs: 18 minutes on two quiet cores), so it is read from a store of
    optima shipped beside the editor when one was made under the same settings for these pairs
    (`genfields evaluate --per-pair-steps 60 --per-pair-store ...`, docs/reproduce.md): then on all the pairs.
    Otherwise it is computed here on the first `sizes.pair_pairs` pairs, and the editor itself is scored on the
    same pairs too (`editor_same_pairs`): FD in particular depends on the number of images, so only that row
    compares with it."""
    optimum = PairOptimumEditor(base.editor, PairOptimumConfig(steps=sizes.pair_steps))
    shipped = editor_folder(f"{preset.name}-paper") if f"{preset.name}-paper" in shipped_editors() else None
    optimum.solved, source = stored_pair_optimum(optimum, [base.folder, shipped], preset.name, seed, sizes.pairs)
    n = sizes.pairs if optimum.solved is not None else min(sizes.pair_pairs, sizes.pairs)
    own = shared if n == sizes.pairs else SharedPairs()
    result = evaluate_editor(optimum, preset, n, seed, sizes.batch, progress=progress, judges=judges, shared=own)
    result |= {"per_pair_steps": sizes.pair_steps, "pairs": n,
               "source": source if optimum.solved is not None else f"computed in this run ({source})"}
    if n < sizes.pairs:
        result["editor_same_pairs"] = evaluate_editor(base.editor, preset, n, seed, sizes.batch, progress=progress,
                                                      judges=judges, shared=own)["method"]
    return result


def faithful_baseline(names: list[str], encoders: dict[str, str]) -> list[str]:
    """The W-space operating points the matched-FD verdict reads: those that train E_attr with the mapper, as
    IDDISEN does, when there is any; a row that kept E_attr frozen is another method and stays a shown row only.
    With no such row (editors trained before the option), all of them."""
    trained = [n for n in names if encoders.get(n) != "frozen"]
    return trained or list(names)


def table1_numbers(evals: dict[str, dict]) -> dict:
    """Table 1 from the evaluations: every row's metrics, the two families of operating points (names, FD
    order), the W rows shown but left out of their family (`faithful_baseline`), each row's pose leak, and which
    networks judged."""
    rows = {"ours": evals["paper"]["method"], "wspace": evals["wspace"]["method"],
            "unedited": evals["paper"]["unedited"]}
    rows.update({name: evals[name]["method"] for name in (*EXTENSION_NAMES, *OPERATING_POINTS, PAIR_OPTIMUM)
                 if name in evals})
    key = {"paper": "ours", "wspace": "wspace"}
    encoders = {row: evals[row]["attribute_encoder"] for row in rows if "attribute_encoder" in evals.get(row, {})}
    families = {fam: sorted([key[fam]] + [n for n in OPERATING_POINTS if n in evals and family_of(n) == fam],
                            key=lambda n: rows[n]["fd"]) for fam in ("paper", "wspace")}
    families["wspace"] = faithful_baseline(families["wspace"], encoders)
    outside = [n for n in rows if family_of(n) == "wspace" and n not in families["wspace"]]
    leak = {row: evals["paper" if row in ("ours", "unedited") else row]["pose_leak"][
        "unedited" if row == "unedited" else "method"] for row in rows
        if "pose_leak" in evals["paper" if row in ("ours", "unedited") else row]}
    optimum = evals.get(PAIR_OPTIMUM, {})
    return {"rows": rows, "families": families, "outside_family": outside, "pose_leak": leak,
            "judged_by": evals["paper"]["judged_by"], "attribute_encoder": encoders,
            "per_pair_steps": optimum.get("per_pair_steps"), "per_pair_pairs": optimum.get("pairs"),
            "per_pair_source": optimum.get("source"),
            "paper_on_per_pair_pairs": optimum.get("editor_same_pairs")}


def judged_name(table1: dict) -> str:
    """'judges' or 'loss networks': who scored the plain metrics of Table 1."""
    return "judge" if isinstance(table1.get("judged_by"), dict) else "loss networks"


def measure_face_size(preset: EditingPreset, nets: PerceptionSet, res: int, images: int, render_seed: int,
                      batch: int = 50) -> dict:
    """Average face size (E_lnd landmarks 1 and 17) over the preset's attribute images, with its source."""
    device = module_device(nets.landmarks)
    with torch.no_grad():
        attrs = attribute_images(preset.attributes, images, res, render_seed)
        lm = torch.cat([nets.landmarks(chunk.to(device)).landmarks.cpu() for chunk in attrs.split(batch)])
    fs = face_sizes(lm.numpy())
    return {"images": len(fs), "resolution": res, "mean_px": float(fs.mean()), "std_px": float(fs.std()),
            "relative": float(fs.mean() / res), "paper_px": paper.FACE_SIZE_PX,
            "paper_relative": paper.FACE_SIZE_PX / paper.RESOLUTION, "source": f"E_lnd landmarks 1 and 17 of "
            f"{len(fs)} attribute images ({preset.attributes}, seed {render_seed})"}


def editor_plan(preset_name: str, model: str | None = None, seed: int = 0, quick: bool = False,
                device: str | torch.device = "cpu") -> dict[str, str | None]:
    """Every editor a report needs, name -> control units (None: all layers).

    Table 3's ranges follow from the face size the report measures (same images, same seed), so a
    script can train exactly the editors that `reproduce --editors` will look for.
    """
    from genfields.perception import load_perception
    from genfields.stylegan2 import load_generator

    preset = get_preset(preset_name)
    preset.require()
    sizes = report_sizes(preset_name, quick)
    layout = load_generator(model or preset.generator).layout
    face = measure_face_size(preset, load_perception(preset.perception, resolve_device(device)), preset.resolution,
                             sizes.face_images,
                             preset.eval_render_seed + seed, sizes.batch)
    ranges = select_gf_ranges([lay.gf for lay in layout], face["mean_px"],
                              [lay.gf for lay in StyleLayout.from_arch("paper256")])
    plan: dict[str, str | None] = {"paper": None, "wspace": None}
    plan.update({name: None for name in TABLE2_NAMES if name != "paper"})
    plan.update({f"gf{r.config}": r.convs for r in ranges})
    plan.update({name: None for name in (*EXTENSION_NAMES, *OPERATING_POINTS)})
    return plan


def reuse_summary(stats, layout: StyleLayout, paper_layout: StyleLayout, face_px: float) -> dict:
    """Figure 8's numbers: T_u with reuse rates and names, per-layer counts, the paper's dimensions located."""
    names = name_channels(layout, stats.union)
    for entry, rate in zip(names, stats.rate):
        entry["reuse_rate"] = float(rate)
    order = np.argsort(-stats.rate, kind="stable")
    by_layer: dict[str, dict] = {}
    for entry in names:
        slot = by_layer.setdefault(entry["layer"], {"channels": 0, "reuse_mass": 0.0, "gf": entry["gf"]})
        slot["channels"] += 1
        slot["reuse_mass"] += entry["reuse_rate"]
    mass = float(stats.rate.sum())
    above = sum(v["reuse_mass"] for v in by_layer.values() if v["gf"] > face_px)
    paper_dims = name_channels(paper_layout, np.array([paper_layout.parse_index(d) for d in paper.REUSED_DIMENSIONS]))
    return {"tests": int(stats.top.shape[0]), "k": int(stats.top.shape[1]), "union_size": len(stats.union),
            "union": names, "most_reused": [names[i] for i in order[:10]], "by_layer": by_layer,
            "reuse_mass_in_fields_larger_than_face": above / mass if mass else 0.0,
            "paper_dimensions": paper_dims, "paper_union_size": paper.REUSE_UNION_SIZE}


def qualitative_figures(source: EditorSource, ranges, preset, sizes: ReportSizes, seed: int, out: Path,
                        judges: Judges | None = None) -> str:
    """Figures 5, 6, 9 and the appendix's Figures 1-3 on the same identities and attribute images.

    Figure 9 and the appendix figures draw the attribute image's and the output's landmarks as the judge
    landmark network sees them (the loss network where a preset has no judges), and appendix Figure 3 also
    the loss network's landmarks of the output: where an editor tears the face to fool the loss network,
    its points sit on the attribute's while the judge's do not. Returns the name of the network drawn."""
    base = source.get("paper").editor
    G, res = base.G, base.G.config.img_resolution
    rows_n, cols_n = sizes.grid
    z = torch.cat([seed_to_z(seed + 1 + i, G.z_dim) for i in range(rows_n)])
    attrs = attribute_images(preset.attributes, cols_n, res, preset.eval_render_seed + seed + 1)
    grid = base.edit(z.repeat_interleave(cols_n, 0), attrs.repeat(rows_n, 1, 1, 1)).cpu()
    save_image(edit_grid(grid.identity_image[::cols_n], attrs, grid.image), out / "figure5_edits.png")

    n = sizes.panels
    z = torch.cat([seed_to_z(seed + 1 + i, G.z_dim) for i in range(n)])
    attrs = attribute_images(preset.attributes, n, res, preset.eval_render_seed + seed + 2)
    results = {name: source.get(name).editor.edit(z, attrs).cpu() for name in TABLE2_NAMES}
    for r in ranges:
        results[f"gf{r.config}"] = source.get(f"gf{r.config}", r.convs).editor.edit(z, attrs).cpu()
    ref = results["paper"]
    if judges is not None:
        drawn = judges.names["landmarks"]
        seen = _judge_landmarks(judges, [ref.attribute_image, ref.identity_image]
                                + [result.image for result in results.values()])
        attr_points, identity_points = seen[0], seen[1]
        output_points = dict(zip(results, seen[2:]))
    else:
        drawn = "loss network"
        attr_points, identity_points = ref.attribute.landmarks.numpy(), ref.identity_pose.landmarks.numpy()
        output_points = {name: result.output.landmarks.numpy() for name, result in results.items()}
    attr_lnd = Overlay(attr_points, "red", f"attribute landmarks ({drawn})")
    head = [ImageRow("identity", ref.identity_image), ImageRow("attribute", ref.attribute_image, [attr_lnd])]

    def output_overlay(name: str) -> Overlay:
        return Overlay(output_points[name], "lime", f"output landmarks ({drawn})")

    label = {f"gf{r.config}": f"config {r.config}\n{r.convs}\nGF {r.gf_min}-{r.gf_max}" for r in ranges}
    label["paper"] = "all layers"
    if judges is not None:  # the panels' tearing: judge vs loss-net disagreement of the output
        for name in label:
            gap = landmark_disagreement(torch.from_numpy(output_points[name]), results[name].output.landmarks,
                                        res).mean()
            label[name] += f"\njudge/loss-net\ngap {gap:.3f}"

    def edited(name: str) -> ImageRow:
        return ImageRow(label[name], results[name].image, [attr_lnd, output_overlay(name)])

    plot_image_rows([ImageRow("identity", ref.identity_image), ImageRow("attribute", ref.attribute_image)]
                    + [ImageRow(paper.TABLE_2_LABELS[name], results[name].image) for name in TABLE2_NAMES],
                    out / "figure6_ablation.png", "Figure 6: the ablation configurations (Table 2), top to bottom")
    plot_image_rows(head + [edited("paper"), edited("gf5")], out / "figure9_small_fields.png",
                    f"Figure 9: fields much smaller than the face (config 5) against all layers; landmarks by {drawn}")
    plot_image_rows(head + [edited(k) for k in ("paper", "gf2", "gf3")], out / "appendix_figure1.png",
                    "Appendix Figure 1: all fields; smallest field below the face (config 2); above it (config 3); "
                    f"landmarks by {drawn}")
    plot_image_rows(head + [edited(k) for k in ("gf4", "gf5")], out / "appendix_figure2.png",
                    "Appendix Figure 2: largest field slightly above the face (config 4); below it (config 5); "
                    f"landmarks by {drawn}")
    small, r5 = results["gf5"], next(r for r in ranges if r.config == 5)
    generated = [attr_lnd, output_overlay("gf5")]
    if judges is not None:
        generated.append(Overlay(small.output.landmarks.numpy(), "magenta", "output landmarks (loss network)"))
    plot_image_rows([ImageRow("attribute", small.attribute_image, [attr_lnd]),
                     ImageRow(label["gf5"], small.image, generated),
                     ImageRow("identity", small.identity_image, [Overlay(identity_points, "cyan",
                                                                        f"identity landmarks ({drawn})")])],
                    out / "appendix_figure3.png", f"Appendix Figure 3: config 5, {r5.convs}, GF {r5.gf_min}-"
                    f"{r5.gf_max}; landmarks by {drawn}")
    return drawn


def _judge_landmarks(judges: Judges, images: list[torch.Tensor]) -> list[np.ndarray]:
    """The judge landmark network's landmarks [N, 68, 2] of each batch of images (run on its device)."""
    device = module_device(judges.landmarks)
    with torch.no_grad():
        return [judges.landmarks(x.to(device)).landmarks.cpu().numpy() for x in images]
