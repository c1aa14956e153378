"""The repository stands alone: no pointer outside it, links and file paths in the docs that
resolve, every benchmark harness listed by ``make bench``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.__main__ import HARNESSES, usage

REPO = Path(__file__).resolve().parents[1]


def tracked(*patterns: str) -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", *patterns], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [REPO / name for name in listed if (REPO / name).exists()]


def test_nothing_outside_tests_points_outside_the_repository() -> None:
    for path in tracked():
        if path.parts[len(REPO.parts)] == "tests" or path.suffix in {".json", ".db"}:
            continue
        text = path.read_text(errors="replace")
        assert "../shared" not in text and "CONTRACT.md" not in text, path


def test_markdown_links_resolve() -> None:
    for doc in tracked("*.md"):
        for target in re.findall(r"\]\(([^)#\s]+)\)", doc.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            assert (doc.parent / target).exists(), f"{doc.name}: {target}"


# A path in backticks: `worker.py`, `workflows/lifecycle/rules.py`, `clients/migrations`.
CODE_SPAN = re.compile(r"`([^`\s]+)`")


def missing_paths(text: str, root: Path = REPO) -> list[str]:
    """Paths written in backticks that name nothing in the repository: any ``*.py``, and
    anything under one of the repository's own top-level folders (``workflows/...``,
    ``tests/...``). Other slashes (`text/markdown`, `temporalio/ui`, URLs) are not paths here."""
    # Not .data/ and the like: local state, absent from a fresh checkout.
    folders = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    missing = []
    for span in CODE_SPAN.findall(text):
        path = span.rstrip("/")
        names_a_file = path.endswith(".py")
        under_a_folder = "/" in path and path.split("/")[0] in folders
        if (names_a_file or under_a_folder) and not (root / path).exists():
            missing.append(span)
    return missing


def test_paths_in_the_docs_exist() -> None:
    """A file moved or merged is a doc to fix: each path a doc names is in the repository."""
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        assert missing_paths(doc.read_text()) == [], doc.name


def test_a_path_that_names_nothing_is_found(tmp_path: Path) -> None:
    (tmp_path / "workflows" / "lifecycle").mkdir(parents=True)
    (tmp_path / "workflows" / "lifecycle" / "rules.py").write_text("")
    (tmp_path / "worker.py").write_text("")
    text = (
        "`workflows/lifecycle/rules.py`, `worker.py`, `workflows/`, `text/markdown`; "
        "moved: `workflows/rules.py`, `workflows/claims/`, `opening.py`"
    )
    assert missing_paths(text, tmp_path) == [
        "workflows/rules.py",
        "workflows/claims/",
        "opening.py",
    ]


def test_docs_exist() -> None:
    for name in ("architecture", "contract", "operations"):
        assert (REPO / "docs" / f"{name}.md").stat().st_size > 1000


def test_make_bench_lists_every_harness_with_its_command() -> None:
    runnable = {
        path.stem
        for path in (REPO / "bench").glob("*.py")
        if f"python -m bench.{path.stem}" in path.read_text()
    }
    # bench.worker is a process the harnesses start, not a harness.
    assert runnable - {"worker"} == set(HARNESSES)
    listing = subprocess.run(
        [sys.executable, "-m", "bench"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    for name in HARNESSES:
        assert usage(name) in listing
        assert f".venv/bin/python -m bench.{name}" in listing
