"""The project's own design document: docs/design.md exists, every reference to a design document points to it,
and it names the layers that pyproject.toml declares.

A reference is any `design.md` (in any case) in a text file of the repository; it must resolve to docs/design.md,
from the repository root or from the citing file's folder (a relative link inside docs/). The generated report
(docs/report/) and what a checkout leaves beside the sources (virtual environment, runs, caches) are not read.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "docs" / "design.md"
TEXT_SUFFIXES = {".py", ".md", ".toml", ".sh", ".txt", ".json", ".html", ".js", ".css", ".cfg", ".ini", ".yml",
                 ".yaml"}
SKIPPED = {".git", ".venv", "runs", "__pycache__", ".pytest_cache", ".hypothesis", "build", "dist", "out",
           "resumable", "node_modules"}
REFERENCE = re.compile(r"[\w./\\-]*design\.md", re.IGNORECASE)
tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")


def text_files(root: Path):
    """The repository's text files by suffix, outside SKIPPED folders, egg-info and the generated report."""
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if (any(part in SKIPPED or part.endswith(".egg-info") for part in rel.parts[:-1])
                or rel.parts[:2] == ("docs", "report") or not path.is_file() or path.suffix not in TEXT_SUFFIXES):
            continue
        yield path


def is_the_design_document(reference: str, citing: Path, root: Path) -> bool:
    name = reference.replace("\\", "/")
    if not name.endswith("design.md"):  # DESIGN.md, Design.md: another file on a case-sensitive system
        return False
    target = root / "docs" / "design.md"
    return any((base / name).resolve() == target.resolve() for base in (root, citing.parent))


def foreign_design_references(root: Path) -> list[str]:
    """'path:line: reference' for every mention of a design document other than docs/design.md (this file, whose
    examples name foreign ones on purpose, excepted)."""
    found = []
    for path in text_files(root):
        if path.resolve() == Path(__file__).resolve():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for match in REFERENCE.finditer(line):
                if not is_the_design_document(match.group(0), path, root):
                    found.append(f"{path.relative_to(root)}:{number}: {match.group(0)}")
    return found


def test_the_design_document_exists():
    assert DESIGN.is_file(), "docs/design.md, the project's design document, is missing"


def test_every_design_reference_points_to_docs_design_md():
    foreign = foreign_design_references(ROOT)
    assert not foreign, ("references to a design document other than docs/design.md:\n" + "\n".join(foreign))


def test_the_check_finds_a_foreign_design_document(tmp_path):
    (tmp_path / "docs" / "report").mkdir(parents=True)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "docs" / "design.md").write_text("# design\n")
    (tmp_path / "docs" / "a.md").write_text("see docs/design.md and [the design](design.md)\n")  # both fine
    (tmp_path / "docs" / "report" / "index.md").write_text("DESIGN.md\n")  # generated: not read
    (tmp_path / "pkg" / "m.py").write_text('"""As ../shared/DESIGN.md says."""\n\n# layering of DESIGN.md\n')
    (tmp_path / "README.md").write_text("the notes in notes/design.md\n")
    assert foreign_design_references(tmp_path) == [
        "README.md:1: notes/design.md",
        "pkg/m.py:1: ../shared/DESIGN.md",
        "pkg/m.py:3: DESIGN.md",
    ]


def test_the_design_document_names_every_layer():
    layers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["genfields"]["layers"]
    text = DESIGN.read_text(encoding="utf-8")
    missing = [prefix for layer in layers for prefix in layer if f"`{prefix}`" not in text]
    assert not missing, f"docs/design.md does not name these layers of pyproject.toml: {', '.join(missing)}"
