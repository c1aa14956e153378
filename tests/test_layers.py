"""The layers point one way, read from the import statements of every product module.

entry points (starter/) -> workflows/ -> activities/ -> clients/ -> the outside world; worker.py
builds clients and activities. Nothing below imports anything above it, and no two product
modules import each other, however long the way round.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("workflows", "activities", "clients", "starter", "localslack", "devrun", "config")
TOP_MODULES = ("worker", "logs")
# Libraries that reach outside the process: the domain must not, the clients may.
IO_LIBRARIES = frozenset(
    {
        "aiohttp",
        "alembic",
        "fastapi",
        "httpx",
        "psycopg",
        "requests",
        "slack_bolt",
        "slack_sdk",
        "smtplib",
        "socket",
        "sqlalchemy",
        "subprocess",
        "urllib.request",
        "uvicorn",
    }
)
# (layer, what it may not import, why)
RULES = [
    ("workflows", {"clients", "starter", "devrun", *IO_LIBRARIES}, "the domain does no I/O"),
    (
        "activities",
        {"starter", "devrun", *IO_LIBRARIES},
        "activities are thin wrappers: the clients do the I/O",
    ),
    ("clients", {"activities", "starter", "devrun", "temporalio"}, "clients are plain classes"),
    ("worker", {"starter", "devrun"}, "the worker runs without the entry points"),
    ("starter", {"activities", "devrun"}, "entry points read through the clients"),
    (
        "localslack",
        {"workflows", "activities", "clients", "starter", "devrun", *TOP_MODULES},
        "the emulator stands in for Slack and knows nothing of the product but the names of "
        "the settings it reads (config)",
    ),
]


def product_modules(root: Path = REPO) -> dict[str, Path]:
    """Every product module by dotted name; migrations are Alembic's scripts, not modules."""
    found = {name: root / f"{name}.py" for name in TOP_MODULES}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if "migrations" in parts:
                continue
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(module: str, path: Path, known: set[str]) -> Iterator[str]:
    """What a module imports, anywhere in it (a function's import is a dependency too): for
    ``from package import name``, the submodule when ``name`` is one; relative imports are
    resolved from the module's package. Imports under ``if TYPE_CHECKING:`` never run, so
    they are left out: a type named both ways is no import circle."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    for block in ast.walk(tree):
        if isinstance(block, ast.If) and ast.unparse(block.test).endswith("TYPE_CHECKING"):
            block.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            inside = [name for name in submodules if name in known]
            yield from inside or [base]


def import_graph(root: Path = REPO) -> dict[str, set[str]]:
    modules = product_modules(root)
    known = set(modules)
    return {name: set(imported(name, path, known)) for name, path in modules.items()}


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for layer, forbidden, why in RULES:
        for module, targets in sorted(graph.items()):
            if not within(module, layer):
                continue
            for target in sorted(targets):
                if any(within(target, banned) for banned in forbidden):
                    found.append(f"{module} imports {target} ({why})")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph[module]:
            if target not in graph:
                continue  # a library
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return groups


def test_every_import_points_down_the_layers() -> None:
    assert violations(import_graph()) == []


def test_no_product_modules_import_each_other_in_a_circle() -> None:
    assert cycles(import_graph()) == []


def test_the_graph_holds_every_product_module_and_resolves_each_kind_of_import() -> None:
    """The checks above see what they must: entry points, the worker, package-relative and
    submodule imports."""
    graph = import_graph()
    assert "starter.api.app" in graph and "worker" in graph and "clients.archive" in graph
    assert "clients.archive" in graph["starter.api.routes.reports"]
    assert "activities.slack" in graph["worker"]
    assert "localslack.posts" in graph["localslack.workspace"]  # from .posts import ...
    assert "localslack.posts" in graph["localslack.api.chat"]  # from ..posts import ...


@pytest.mark.parametrize(
    ("files", "found"),
    [
        (
            {"starter/cli.py": "from starter import cli_more\n", "starter/cli_more.py": ""},
            [],
        ),
        (
            {
                "starter/cli.py": "from starter import cli_more\n",
                "starter/cli_more.py": "def f():\n    from starter.cli import app\n",
            },
            [["starter.cli", "starter.cli_more"]],
        ),
    ],
)
def test_a_circle_is_found_even_through_an_import_inside_a_function(
    tmp_path: Path, files: dict[str, str], found: list[list[str]]
) -> None:
    for name in (*PACKAGES,):
        (tmp_path / name).mkdir()
    for name in TOP_MODULES:
        (tmp_path / f"{name}.py").write_text("")
    for path, text in files.items():
        (tmp_path / path).write_text(text)
    assert cycles(import_graph(tmp_path)) == found


def test_imports_against_the_layers_are_named_with_the_reason(tmp_path: Path) -> None:
    for name in PACKAGES:
        (tmp_path / name).mkdir()
    for name in TOP_MODULES:
        (tmp_path / f"{name}.py").write_text("")
    (tmp_path / "worker.py").write_text("from starter.schedules import ensure\n")
    (tmp_path / "starter" / "schedules.py").write_text("")
    (tmp_path / "activities" / "mail.py").write_text("from temporalio import activity\n")
    (tmp_path / "activities" / "paging.py").write_text("import httpx\n")
    (tmp_path / "clients" / "mail.py").write_text("from temporalio import activity\n")
    (tmp_path / "workflows" / "flow.py").write_text("import httpx\nfrom activities import mail\n")
    (tmp_path / "starter" / "status.py").write_text("from activities.mail import MailActivities\n")
    assert violations(import_graph(tmp_path)) == [
        "workflows.flow imports httpx (the domain does no I/O)",
        "activities.paging imports httpx (activities are thin wrappers: the clients do the I/O)",
        "clients.mail imports temporalio (clients are plain classes)",
        "worker imports starter.schedules (the worker runs without the entry points)",
        "starter.status imports activities.mail (entry points read through the clients)",
    ]
