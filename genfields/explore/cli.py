"""The `genfields explore` command."""

from __future__ import annotations

import typer

from genfields.stylegan2.cli import MODEL_HELP


def explore(
    model: str = typer.Option("synth64", help=MODEL_HELP),
    editor: str = typer.Option("auto", help="An editor (shipped name or a train-editor run's final/ folder) for the "
                               "Edit view; 'auto': the shipped editor of the model's name if there is one; 'none'."),
    port: int = typer.Option(7860, help="Port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (127.0.0.1: this machine only)."),
) -> None:
    """A local web page: generate, click a pixel to see its generative fields, probe units, move style channels, edit.

    Prints the page's URL and serves until Ctrl+C. The page uses no internet assets. The page can switch
    between MODEL and the shipped models (each loaded on first use, with its shipped editor).
    """
    from genfields.errors import ConfigError
    from genfields.explore.server import ExploreServer, require_web

    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, got {port}")
    require_web()  # the one-line hint before anything loads, when the extra is missing
    from genfields.explore.catalogue import Catalogue
    from genfields.explore.session import Explorer

    explorer = Explorer.load(model, editor)
    server = ExploreServer(Catalogue(explorer), host, port)
    print(f"genfields explore: {server.url}  (model {model}, editor {explorer.editor_name or 'none'}; Ctrl+C to stop)",
          flush=True)
    server.run()
