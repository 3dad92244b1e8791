"""The `genfields` command line: thin commands over the library.

Every command reports user errors (missing file, bad checkpoint, bad argument, unwritable output)
as one line on stderr and exits with status 2, without a traceback: options are checked at parse
time (`genfields.errors`), and `GenfieldsGroup` (`errors.one_line_group`) maps whatever else a
command raises to one line. `--debug` (anywhere on the line) or GENFIELDS_DEBUG=1 shows the
traceback instead.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import Optional

import torch
import typer

from genfields.devices import KEEP_FREED_MEMORY_ENV, keep_freed_memory
from genfields.errors import (DEBUG_ENV, SEED, WIDTH, ConfigError, cli_console, exclusive, one_line_group, output_file,
                              output_folder, ranged)
from genfields.stylegan2.cli import MODEL_HELP

GenfieldsGroup = one_line_group()  # every error one line and exit 2 (genfields.errors)

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, cls=GenfieldsGroup,
                  help="StyleGAN2 generative fields and style-space face editing.")
console = cli_console()


def _version(value: bool) -> None:
    if value:
        from genfields import __version__

        print(f"genfields {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help=f"Show the traceback of an error (also {DEBUG_ENV}=1); "
                               "may be given anywhere on the line."),
) -> None:
    """StyleGAN2 generative fields and style-space face editing."""



@app.command()
def fields(
    arch: Optional[str] = typer.Option(None, help="A named architecture (paper256, synth64, ...); no weights needed."),
    model: Optional[str] = typer.Option(None, help=MODEL_HELP),
    measure: bool = typer.Option(False, "--measure", help="Also measure the exact field on the network "
                                 "and (with --model) the effective field."),
    share: float = typer.Option(0.9, callback=ranged(0, 1, min_open=True),
                                help="Energy share that defines the effective field, in (0, 1]."),
    samples: int = typer.Option(4, callback=ranged(1, 100_000), help="Samples averaged for the effective field."),
    channels: int = typer.Option(16, callback=WIDTH,
                                 help="Random channels per layer averaged for the effective field."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per conv layer (a JSON list)."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV."),
    plot: Optional[Path] = typer.Option(None, callback=output_file(".png", ".pdf", ".svg"),
                                        help="Write the Figure 2 analogue (fields over a generated image)."),
    plot_layers: Optional[str] = typer.Option(None, help="Layers drawn by --plot, e.g. conv2,conv6,conv10 "
                                              "(default: those, scaled to the generator's depth)."),
    seed: int = typer.Option(0, callback=SEED, help="Seed for the sample image and the measurements."),
) -> None:
    """Generative fields of every conv layer: the paper's Eq. 1, and measured exact/effective sizes.

    Eq. 1 needs only the architecture. The exact field is the extent of the output pixels that an
    impulse at the centre of a layer's input reaches through the real ops (FIR filters, toRGB
    skips); the effective field is the centred square that holds 90% of the response energy of
    a trained model. See docs/generative-fields.md.
    """
    from genfields.fields import figure2_layers
    from genfields.stylegan2.field_measurement import field_table, plot_generative_fields
    from genfields.stylegan2 import Generator, StyleLayout, load_generator

    if (arch is None) == (model is None):
        raise ConfigError("give exactly one of --arch or --model")
    exclusive(**{"--json": as_json, "--csv": as_csv})
    G = load_generator(model) if model else (Generator.from_arch(arch, seed=seed) if measure or plot else None)
    layout = G.layout if G is not None else StyleLayout.from_arch(arch)
    rows = field_table(layout, G, measure=measure, effective=model is not None and not model.startswith("random:"),
                       share=share, samples=samples, channels=channels, seed=seed, progress=True)
    if plot:
        from genfields.stylegan2.network import seed_to_z

        with torch.no_grad():
            img = G(seed_to_z(seed, G.z_dim))[0]
        label = "random weights (not a trained model)" if model is None or model.startswith("random:") else model
        names = plot_layers.split(",") if plot_layers else figure2_layers(layout)
        plot_generative_fields(img, rows, [layout.layer(n.strip()).name for n in names], plot,
                               title=f"{arch or model}: {label}")
    if as_json:
        print(json.dumps(rows, indent=1))
    elif as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    else:
        _print_fields_table(rows, arch or model, measure)


_SHORT_HEADERS = {"name": "layer", "s_index": "S", "in_resolution": "in res", "resolution": "res", "channels": "ch",
                  "gf": "Eq.1", "gf_paper": "paper", "gf_exact": "exact", "gf_exact_clipped": "in image",
                  "gf_effective": "effective"}


def _print_fields_table(rows: list[dict], name: str, measure: bool) -> None:
    from rich.table import Table

    table = Table(title=f"Generative fields: {name}")
    cols = ["name", "s_index", "in_resolution", "resolution", "stride", "channels", "offset", "gf"]
    if any("gf_paper" in r for r in rows):
        cols.append("gf_paper")
    if measure:
        cols += ["gf_exact", "gf_exact_clipped", "gf_effective"]
    for c in cols:
        table.add_column(_SHORT_HEADERS.get(c, c), justify="right")
    for r in rows:
        table.add_row(*["" if r.get(c) is None else (f"s{r[c]}" if c == "s_index" else str(r[c])) for c in cols])
    console.print(table)
    console.print(f"S dim {sum(r['channels'] for r in rows)}. Eq.1: the paper's formula; paper: the appendix's "
                  "printed value where it differs; exact: measured support of an impulse (unclipped); in image: "
                  "the same clipped to the image; effective: centred square with 90% of the response energy.")


@app.command()
def demo(
    outdir: Path = typer.Option(Path("runs/demo"), callback=output_folder, help="Output folder."),
    seed: int = typer.Option(0, callback=SEED, help="Seed of the first identity."),
) -> None:
    """The main job on the embedded default: edits of generated faces towards rendered ones, and the fields.

    With the shipped synth64 generator and editor: a panel of identities x attribute faces with
    their edits, and the mean identity/expression/pose metrics. Until those ship, the generative
    fields of the paper's model and a grid from a randomly initialised synth64 generator, labelled
    as such (its images are noise).
    """
    from genfields.editing.editor import shipped_editors
    from genfields.evaluation.gan_card import FIELDS_FILE
    from genfields.stylegan2.field_measurement import field_table
    from genfields.imageio import atomic_write_text, make_grid, save_image
    from genfields.stylegan2 import Generator, StyleLayout, load_generator, shipped_models
    from genfields.stylegan2.checkpoints import MODELS_DIR
    from genfields.stylegan2.network import seed_to_z

    outdir.mkdir(parents=True, exist_ok=True)
    stored = MODELS_DIR / "synth64" / FIELDS_FILE
    if "synth64" in shipped_models() and stored.is_file():  # measured on the shipped weights at ship time
        rows, name, measured = json.loads(stored.read_text()), "synth64 (measured when shipped)", True
    else:
        rows, name, measured = field_table(StyleLayout.from_arch("paper256")), "paper256 (the paper's model)", False
    _print_fields_table(rows, name, measure=measured)
    fields_file = outdir / f"fields_{name.split()[0]}.json"
    atomic_write_text(fields_file, json.dumps(rows, indent=1))
    if "synth64" in shipped_editors() and "synth64" in shipped_models():
        from genfields.editing.demo import run_demo

        summary = run_demo(outdir, seed=seed)
        console.print(f"wrote {summary['panel']}: identities x rendered attribute faces, edited by the shipped "
                      "synth64 editor")
        print(json.dumps({k: v for k, v in summary.items() if k != "panel"}))
        return
    if "synth64" in shipped_models():
        G, label = load_generator("synth64"), "synth64 (no shipped editor yet)"
    else:
        G, label = Generator.from_arch("synth64", seed=seed), "RANDOMLY INITIALISED synth64 (untrained: noise)"
    with torch.no_grad():
        images = torch.cat([G(seed_to_z(s, G.z_dim)) for s in range(seed, seed + 16)])
    grid = save_image(make_grid(images, cols=4), outdir / "grid.png")
    console.print(f"wrote {grid}: 16 images from {label}; fields table in {fields_file}")


def _register_package_commands() -> None:
    """Commands whose code lives with the package they drive (stylegan2, synthface, perception, editing, evaluation)."""
    from genfields.downloads_cli import download
    from genfields.editing.cli import edit, evaluate, invert, make_dataset, train_editor
    from genfields.evaluation.cli import gan_quality_command, reproduce, ship_editor, ship_gan_command
    from genfields.stylegan2.cli import generate, info, train_gan_command

    app.command()(generate)
    app.command()(info)
    app.command("train-gan")(train_gan_command)
    app.command("gan-quality")(gan_quality_command)
    app.command("ship-gan")(ship_gan_command)
    from genfields.perception.cli import align, detect, fd_scale, train_perception, train_realism_net
    from genfields.synthface.cli import synth_data

    app.command("make-dataset")(make_dataset)
    app.command("train-editor")(train_editor)
    app.command("edit")(edit)
    app.command("invert")(invert)
    app.command("evaluate")(evaluate)
    app.command("ship-editor")(ship_editor)
    app.command("synth-data")(synth_data)
    app.command("fd-scale")(fd_scale)
    app.command("train-perception")(train_perception)
    app.command("train-realism-net")(train_realism_net)
    app.command("detect")(detect)
    app.command("align")(align)
    app.command("download")(download)
    app.command("reproduce")(reproduce)
    from genfields.explore.cli import explore

    app.command("explore")(explore)


_register_package_commands()


def main() -> None:
    """The `genfields` command: the launcher's settings, the command, and an exit without the teardown."""
    _exit_skipping_teardown(launch())


def launch(args: list[str] | None = None) -> int:
    """Run the command line `args` (default: sys.argv) with the launcher's settings; its exit status."""
    if os.environ.get(KEEP_FREED_MEMORY_ENV, "1") != "0":
        keep_freed_memory()  # a launcher's setting (genfields.devices): 1.4x on paper256 synthesis
    try:
        app(args)  # GenfieldsGroup turns every error into one line and exit 2
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)
        return 1
    return 0


def _exit_skipping_teardown(status: int) -> None:
    """Exit with `status`, without the interpreter's teardown when nothing needs it.

    With torch loaded, freeing every module and object one by one took 0.4-1.0 s after the command
    had finished (docs/benchmarks.md, field measurement). Output is flushed and the atexit handlers
    run (weakref finalizers, multiprocessing's children) first; with another non-daemon thread alive
    or torch.distributed initialised the exit is the ordinary one.
    """
    import atexit
    import threading

    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    if others or distributed:
        sys.exit(status)
    atexit._run_exitfuncs()  # what the interpreter's own exit runs first (CPython has no public name for it)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`genfields ... | head`) or stream
            pass
    os._exit(status)


if __name__ == "__main__":
    main()
