"""Every module path the documentation, the docstrings, the Procfile and deploy/ name exists: a file moved in the
code is moved where it is named too."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / name for name in ("README.md", "Procfile", "worker.py", "wsgi.py", "gunicorn.conf.py")),
                  *(ROOT / "docs").glob("*.md"), *(ROOT / "deploy").iterdir(),
                  *(p for d in ("gateway", "dialogs", "carriers", "bench") for p in (ROOT / d).rglob("*.py"))])
FILE = re.compile(r"(?<![\w/.])((?:gateway|dialogs|carriers|tests|bench|deploy|docs)/[\w/.-]*\w)")
DOTTED = re.compile(r"(?<![\w/.])(gateway(?:\.\w+)+)")


def _defines(module: Path, name: str) -> bool:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            return True
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return True
        if isinstance(node, ast.ImportFrom | ast.Import) and any((a.asname or a.name) == name for a in node.names):
            return True
    return False


def _module_exists(dotted: str) -> bool:
    """`gateway.jobs.cron` is a module; `gateway.state.due.schedule` names one's function."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:cut])
        module = base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
        if module.exists():
            rest = parts[cut:]
            return not rest or _defines(module, rest[0])
    return False


@pytest.mark.parametrize("source", SOURCES, ids=[str(s.relative_to(ROOT)) for s in SOURCES])
def test_the_paths_a_file_names_exist(source: Path) -> None:
    text = source.read_text(encoding="utf-8")
    files = {m.rstrip(".") for m in FILE.findall(text)}
    modules = set(DOTTED.findall(text))
    missing = sorted({f for f in files if not (ROOT / f).exists()} | {m for m in modules if not _module_exists(m)})
    assert missing == []
