"""The trained editors a report needs, found by configuration name, or (with `--quick`) fine-tuned.

Names: the Table 2 configurations (`default`, `no-concat`, `style-reg`, `paper`), the Table 1
baseline (`wspace`), the Table 3 control units `gf1` .. `gf5` (the `paper` configuration
trained with a conv-range mask), Table 1's other operating points (`OPERATING_POINTS`: `paper` and
`wspace` with other loss weights, to compare the families at matched FD) and the extensions beyond
the paper (`paper+id`, `paper+ids`). Each is looked up, in order, as
1. `EDITORS/<name>/final` or `EDITORS/<name>` (a directory of `train-editor` runs, `--editors`);
2. a shipped editor `<preset>-<name>`; for `paper` then `<preset>` (the default editor, which may be
   a fine-tune: `<preset>-paper` is the one trained from scratch, when shipped).
When none is found, a full run stops with an error naming the `train-editor` command that makes
it. `--quick` instead fine-tunes the `paper` editor for a few steps into every configuration with
the same network (the others' losses or masks; `default` gets zero weights on its new F_id inputs,
so it starts as the `paper` editor). The `wspace` baseline and `paper` itself are never improvised
from scratch, except on test presets (`tiny16`), where they are trained for the same few steps.
Every editor is loaded (and every fine-tune runs) on the source's `device`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from genfields.devices import resolve_device
from genfields.editing.config import TrainConfig, named_config
from genfields.editing.dataset import DatasetConfig, GeneratedSet, make_dataset
from genfields.editing.editor import EDITORS_DIR, Editor, editor_folder, load_editor, save_editor
from genfields.editing.mref import transfer_weights
from genfields.editing.presets import EditingPreset
from genfields.editing.trainer import EditorTrainer, train_editor
from genfields.errors import CheckpointError, ConfigError
from genfields.training import Distributed, RunFolder

TABLE2_NAMES = ("default", "no-concat", "style-reg", "paper")
TABLE3_NAMES = tuple(f"gf{k}" for k in range(1, 6))
REQUIRED_NAMES = ("paper", "wspace", *[n for n in TABLE2_NAMES if n != "paper"], *TABLE3_NAMES)  # every full report
SCRATCH_PRESETS = ("tiny16",)  # test presets: every missing editor may be trained briefly from scratch
# Table 1's further operating points: name -> (configuration, train-editor options). With `paper` and
# `wspace` themselves they make the two families compared at matched FD (claims.MATCHED_FD_RULE).
OPERATING_POINTS: dict[str, tuple[str, dict[str, float]]] = {
    "paper-attr0.25": ("paper", {"lambda-attr": 0.25}),
    "paper-attr1": ("paper", {"lambda-attr": 1.0}),
    "paper-sreg0.01": ("paper", {"style-reg": 0.01}),
    "wspace-adv1": ("wspace", {"adversarial": 1.0}),
    "wspace-adv3": ("wspace", {"adversarial": 3.0}),
    "wspace-adv10": ("wspace", {"adversarial": 10.0}),
}
EXTENSION_NAMES = ("paper+id", "paper+ids")  # beyond the paper: reported as ours
CURVE_WINDOWS = 10  # points of each run's loss curve in run.json
OPTION_KEYS = {"lambda-attr": "attribute", "style-reg": "style_reg", "adversarial": "adversarial"}


def family_of(name: str) -> str | None:
    """`paper` or `wspace` for Table 1's operating points (their configuration), else None."""
    config = OPERATING_POINTS[name][0] if name in OPERATING_POINTS else name
    return config if config in ("paper", "wspace") else None


@dataclass
class ReportEditor:
    """An editor, where it came from (shown in the report) and its folder (a run's `final/` or a shipped one)."""

    name: str
    editor: Editor
    origin: str
    folder: Path | None = None

    def training(self) -> dict:
        """How it was trained, for run.json: its training configuration (steps, losses, mask, seed, dataset, init
        and the run-length changes of `history`), what it was fine-tuned from, its model card, and the run's last
        logged metrics (`metrics.jsonl` beside `final/`)."""
        saved = self.folder / "config.json" if self.folder is not None else None
        meta = json.loads(saved.read_text()) if saved is not None and saved.is_file() else self.editor.meta
        record = {"origin": self.origin, "config_name": meta.get("config_name"), "train": meta.get("train"),
                  "fine_tuned_from": meta.get("fine_tuned_from")}
        if self.folder is not None:
            record["folder"] = shown_path(self.folder)
            card = self.folder / "MODEL_CARD.md"
            record["card"] = shown_path(card) if card.is_file() else None
            metrics = self.folder.parent / "metrics.jsonl" if self.folder.name == "final" else None
            if metrics is not None and metrics.is_file():
                logged = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
                record["metrics_logged"] = len(logged)
                record["last_metrics"] = logged[-1] if logged else None
                record["loss_curve"] = loss_curve(logged)
        return record


def loss_curve(logged: list[dict], windows: int = CURVE_WINDOWS) -> list[dict]:
    """A run's training curve in brief: its cross-pair steps (all steps when no record names a stage) cut into
    `windows` consecutive runs of records, each the mean of every numeric metric, at the window's last step."""
    cross = [r for r in logged if r.get("stage", "cross") == "cross"]
    if not cross:
        return []
    size = -(-len(cross) // windows)
    curve = []
    for start in range(0, len(cross), size):
        chunk = cross[start:start + size]
        keys = [k for k, v in chunk[-1].items() if isinstance(v, (int, float)) and k != "step"]
        curve.append({"step": chunk[-1]["step"], "records": len(chunk),
                      **{k: sum(r[k] for r in chunk if k in r) / sum(k in r for r in chunk) for k in keys}})
    return curve


def config_name_of(name: str) -> str:
    """The `train-editor --config` of a report editor name (`gf3` -> `paper`, `wspace-adv3` -> `wspace`)."""
    if name in OPERATING_POINTS:
        return OPERATING_POINTS[name][0]
    return "paper" if name.startswith("gf") else name


def dataset_folder(preset: str) -> str:
    """Where the commands this module prints put the preset's generated set."""
    return f"data/edit-{preset}"


def train_editor_command(preset: str, name: str, editors: Path | str | None, layers: str | None = None) -> str:
    """The `genfields train-editor` command line that makes report editor `name` in EDITORS/name."""
    mask = f" --layers {layers} --mask-mode train" if layers else ""
    options = "".join(f" --{k} {v:g}" for k, v in OPERATING_POINTS.get(name, ("", {}))[1].items())
    return (f"genfields train-editor --preset {preset} --config {config_name_of(name)} --dataset "
            f"{dataset_folder(preset)} --outdir {editors or 'EDITORS'}/{name}{mask}{options}")


def train_command(preset: str, name: str, editors: Path | None, layers: str | None = None) -> str:
    """The commands that make editor `name` for a report (for error messages)."""
    return (f"`genfields make-dataset --preset {preset} --out {dataset_folder(preset)}` (once), then "
            f"`{train_editor_command(preset, name, editors, layers)}`, and pass `--editors {editors or 'EDITORS'}`")


class EditorSource:
    """Finds (or, in quick mode, fine-tunes) the editor of each configuration, once."""

    def __init__(self, preset: EditingPreset, workdir: Path, editors: Path | None = None, quick: bool = False,
                 steps: int = 0, dataset: Path | None = None, dataset_size: tuple[int, int] = (0, 0),
                 model: str | None = None, seed: int = 0, progress: bool = False,
                 device: str | torch.device = "cpu"):
        if editors is not None and not editors.is_dir():
            raise ConfigError(f"--editors {editors}: no such directory")
        self.device = resolve_device(device)
        self.preset, self.workdir, self.editors, self.quick = preset, workdir, editors, quick
        self.steps, self.dataset, self.dataset_size = steps, dataset, dataset_size
        self.model, self.seed, self.progress = model, seed, progress
        self._cache: dict[str, ReportEditor] = {}

    def origins(self) -> dict[str, str]:
        """Where each editor used so far came from."""
        return {name: ed.origin for name, ed in self._cache.items()}

    def weights(self) -> dict[str, str]:
        """SHA-256 (first 16 hex digits) of each used editor's saved weights, so that a later report can tell an
        editor retrained under the same name; fine-tuned editors, which exist only in this run, have none."""
        from genfields.downloads import sha256_of

        return {name: sha256_of(ed.folder / "editor.safetensors")[:16] for name, ed in self._cache.items()
                if ed.folder is not None and (ed.folder / "editor.safetensors").is_file()}

    def training(self) -> dict[str, dict]:
        """How each editor used so far was trained (`ReportEditor.training`)."""
        return {name: ed.training() for name, ed in self._cache.items()}

    def require(self, names) -> None:
        """One error naming every editor of `names` that is neither in `--editors` nor shipped, and every run in
        `--editors` that has not finished (full runs; a shipped editor never stands in for an unfinished run)."""
        unfinished = [name for name in names if self.editors is not None and not any(
            _is_editor(path) for path in (self.editors / name / "final", self.editors / name))
            and RunFolder(self.editors / name, is_main=False).holds_run()]
        missing = [name for name in names if name not in unfinished
                   and not any(_is_editor(path) for path, _ in self._candidates(name))]
        if not (missing or unfinished):
            return
        p = self.preset.name
        looked = f"in {self.editors} and " if self.editors is not None else ""
        problems = [f"no trained editor {', '.join(missing)} (looked {looked}for shipped {p}-<name>)"] * bool(missing)
        problems += [f"unfinished runs {', '.join(unfinished)} in {self.editors} (no final/ yet)"] if unfinished else []
        raise ConfigError(f"the full {p} report needs every editor: {'; '.join(problems)}: pass `--editors RUNS` "
                          f"(RUNS/<name>/final from train-editor), or train them (`genfields reproduce --preset {p} "
                          "--plan --editors RUNS` prints the commands; scripts/train_editors.sh resumes unfinished "
                          "ones), or run with --quick")

    def get(self, name: str, layers: str | None = None) -> ReportEditor:
        if name not in self._cache:
            self._cache[name] = self._find(name, layers) or self._make(name, layers)
        return self._cache[name]

    def find(self, name: str) -> ReportEditor | None:
        """A trained editor of `name` if there is one (never improvised): for optional rows."""
        if name not in self._cache:
            found = self._find(name, None)
            if found is None:
                return None
            self._cache[name] = found
        return self._cache[name]

    # --- trained editors -----------------------------------------------------------------------
    def _candidates(self, name: str) -> list[tuple[Path | str, str]]:
        """Where editor `name` is looked for, in order, with the origin each gives."""
        candidates: list[tuple[Path | str, str]] = []
        if self.editors is not None:
            candidates += [(self.editors / name / "final", f"run {self.editors / name}"),
                           (self.editors / name, f"folder {self.editors / name}")]
        shipped = [f"{self.preset.name}-{name}"] + ([self.preset.name] if name == "paper" else [])
        return candidates + [(s, f"shipped {s}") for s in shipped]

    def _find(self, name: str, layers: str | None) -> ReportEditor | None:
        for path, origin in self._candidates(name):
            if not _is_editor(path):
                continue
            editor = load_editor(path, model=self.model, device=self.device)
            self._check(name, editor, layers, origin)
            return ReportEditor(name, editor, origin, editor_folder(path))
        return None

    def _check(self, name: str, editor: Editor, layers: str | None, origin: str) -> None:
        trained_as = editor.meta.get("config_name", config_name_of(name))
        if trained_as != config_name_of(name):
            raise ConfigError(f"{origin}: trained as configuration '{trained_as}', the report needs "
                              f"'{config_name_of(name)}' for {name}")
        train = editor.meta.get("train") or {}
        for option, value in OPERATING_POINTS.get(name, ("", {}))[1].items():
            got_value = (train.get("loss") or {}).get(OPTION_KEYS[option])
            if got_value is None or abs(got_value - value) > 1e-12 * max(1.0, abs(value)):
                raise ConfigError(f"{origin}: trained with {OPTION_KEYS[option]} = {got_value}, operating point "
                                  f"{name} needs {value:g}")
        got = editor.config.layers
        if layers is not None and (got is None or
                                   editor.G.layout.conv_range(got) != editor.G.layout.conv_range(layers)):
            raise ConfigError(f"{origin}: control units {got or 'all layers'}, Table 3 needs {layers}")

    # --- quick mode ------------------------------------------------------------------------------
    def _make(self, name: str, layers: str | None) -> ReportEditor:
        scratch = self.preset.name in SCRATCH_PRESETS
        if not self.quick or (name in ("paper", "wspace") and not scratch):
            why = "" if not self.quick else " (--quick fine-tunes only from a trained paper editor)"
            raise ConfigError(f"no trained '{name}' editor for {self.preset.name}{why}: make it with "
                              f"{train_command(self.preset.name, name, self.editors, layers)}")
        if name in ("paper", "wspace"):
            return self._scratch(name)
        return self._fine_tune(name, layers)

    def _data(self, base: Editor | None) -> Path:
        """The generated set of the fine-tunes: `--dataset`, or a small one made once in the work folder."""
        if self.dataset is not None:
            return self.dataset
        folder = self.workdir / "dataset"
        if not (folder / "dataset.json").is_file():
            from genfields.perception import load_perception
            from genfields.stylegan2 import load_generator

            perception = base.meta.get("perception", self.preset.perception) if base else self.preset.perception
            cfg = DatasetConfig(preset=self.preset.name, generator=self._generator_name(base), perception=perception,
                                identities=self.dataset_size[0], attributes=self.dataset_size[1], seed=self.seed)
            G = base.G if base else load_generator(cfg.generator, self.device)
            nets = base.nets if base else load_perception(cfg.perception, self.device)
            make_dataset(cfg, G, nets, folder, progress=self.progress, device=self.device)
        return folder

    def _generator_name(self, base: Editor | None) -> str:
        return self.model or (base.meta.get("generator") if base else None) or self.preset.generator

    def _scratch(self, name: str) -> ReportEditor:
        base = self.get("paper").editor if name != "paper" else None
        cfg = self.preset.train_config(name, generator=self._generator_name(base), dataset=str(self._data(base)),
                                       steps=self.steps, seed=self.seed, sample_every=0, log_every=max(self.steps, 1))
        trainer = train_editor(cfg, self.workdir / "editors" / name, progress=self.progress, device=self.device)
        return ReportEditor(name, _frozen(trainer.editor), f"trained {self.steps} steps from scratch (test preset)",
                            self.workdir / "editors" / name / "final")

    def _fine_tune(self, name: str, layers: str | None) -> ReportEditor:
        base = self.get("paper")
        cfg = self._fine_tune_config(base.editor, name, layers)
        data = GeneratedSet(cfg.dataset)
        folder = self.workdir / "editors" / name
        trainer = EditorTrainer(cfg, RunFolder(folder), Distributed(str(self.device)), base.editor.G,
                                base.editor.nets, data, self.device)
        transfer_weights(base.editor.network, trainer.network, base.editor.config.f_id_dim)
        trainer.run.write_config(cfg.to_dict())
        for _ in range(cfg.steps):
            stats = trainer.train_step()
            trainer.run.log({"step": trainer.step, **stats})
        save_editor(trainer.editor, folder / "final", {"train": cfg.to_dict(), "dataset": cfg.dataset,
                                                       "fine_tuned_from": base.origin})
        return ReportEditor(name, _frozen(trainer.editor), f"fine-tuned {cfg.steps} steps from {base.origin}",
                            folder / "final")

    def _fine_tune_config(self, base: Editor, name: str, layers: str | None) -> TrainConfig:
        """The named configuration on the base editor's network and loss weights, masked to `layers`."""
        p = self.preset
        base_train = base.meta.get("train")
        cfg0 = TrainConfig.from_dict(base_train) if base_train else p.train_config("paper")
        style_reg = cfg0.loss.style_reg or p.style_reg_weight
        model, loss = named_config(config_name_of(name), cfg0.loss, style_reg, p.adversarial_weight, base.config)
        model = dataclasses.replace(model, layers=layers, gf=None, mask_mode="train")
        return dataclasses.replace(cfg0, preset=p.name, config_name=config_name_of(name),
                                   generator=self._generator_name(base), dataset=str(self._data(base)), model=model,
                                   loss=loss, steps=self.steps, lr_start=p.lr_start, lr_end=p.lr_end, seed=self.seed,
                                   sample_every=0)


def shown_path(path: Path) -> str:
    """A path for run.json: shipped files relative to the repository (`genfields/models/...`), others as they are."""
    root = EDITORS_DIR.resolve().parents[2]  # EDITORS_DIR is <root>/genfields/models/editing
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)


def _is_editor(path: Path | str) -> bool:
    try:
        editor_folder(path)
    except CheckpointError:
        return False
    return True


def _frozen(editor: Editor) -> Editor:
    editor.network.eval().requires_grad_(False)
    return editor
