"""`genfields download`: fetch and verify the real-world components, or list what is present."""

from __future__ import annotations

import json
from typing import Optional

import typer

from genfields import downloads
from genfields.downloads import DownloadError, download as fetch_asset, get_asset, home, iter_status
from genfields.errors import cli_console

console = cli_console()
err_console = cli_console(stderr=True)


def _print_status(as_json: bool, verify: bool) -> None:
    """The registry as a table (or JSON): name, status, verification, size, path."""
    rows = list(iter_status(verify=verify))
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    from rich.table import Table

    table = Table(title=f"genfields components in {home()}")
    for column in ("name", "status", "verification", "size", "file", "pin"):
        table.add_column(column)
    for row in rows:
        size = f"{row['size'] / 1e6:.1f} MB" if row["size"] else "?"
        pin = row["digest_source"] if row["verification"] == "sha256-pinned" else (
            "not pinned yet (no published digest)" if row["verification"] == "none" else "")
        table.add_row(row["name"], row["status"], row["verification"], size, row["file"], pin)
    console.print(table)


def download(
    names: Optional[list[str]] = typer.Argument(None, help="Component names, or 'all' (see --list)."),
    list_: bool = typer.Option(False, "--list", help="Show every component and whether it is present/verified."),
    no_verify: bool = typer.Option(False, "--no-verify", help="With --list: do not hash the files (faster)."),
    force: bool = typer.Option(False, "--force", help="Download again even if a verified file is cached."),
    as_json: bool = typer.Option(False, "--json", help="With --list: print JSON rows."),
) -> None:
    """Download the paper's real components (generator, 3DDFA, FaceNet, FID Inception, dlib) into GENFIELDS_HOME.

    Each file is resumed if interrupted, checked against its SHA-256 and renamed into place only
    when it matches. See docs/ffhq.md.
    """
    selected = list(downloads.REGISTRY) if names == ["all"] else (names or [])
    assets = [get_asset(name) for name in selected]  # unknown names fail before anything is listed or downloaded
    if list_ or not names:
        _print_status(as_json, verify=not no_verify)
        return
    failed = []
    for asset in assets:
        try:
            path = fetch_asset(asset, force=force)
        except DownloadError as exc:
            if len(assets) == 1:  # one download: its own one-line error
                raise
            err_console.print(f"[red]failed:[/red] {exc}", highlight=False)
            failed.append(asset.name)
            continue
        pin = downloads.pin_of(asset)
        if pin:
            note = f" (no published digest: SHA-256 {pin['sha256']} pinned {pin['pinned_at']}, {pin['origin']})"
        else:
            note = "" if asset.verification == "sha256" else f" (verification: {asset.verification})"
        console.print(f"{asset.name}: {path}{note}", highlight=False)
    if failed:
        raise DownloadError(f"{len(failed)} of {len(assets)} downloads failed: {', '.join(failed)} (see above)")
