"""The repository stands alone: no pointer outside it, links that resolve, every benchmark
harness listed by ``make bench``."""

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
