"""A wheel (`pip install .`, not only `-e`) carries every package and every file the app serves: the ops console's
templates and CSS are files beside the code, declared in pyproject.toml."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

from setuptools import find_namespace_packages

ROOT = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
PACKAGES = set(find_namespace_packages(str(ROOT), include=SETUPTOOLS["packages"]["find"]["include"]))


def test_the_code_ships_and_nothing_else() -> None:
    roots = {name.split(".")[0] for name in PACKAGES}
    assert roots == {"carriers", "dialogs", "gateway"}
    assert {"gateway.web.ops", "dialogs.messages"} <= PACKAGES


def test_every_file_beside_the_code_is_package_data() -> None:
    data = SETUPTOOLS["package-data"]
    for root in ("carriers", "dialogs", "gateway"):
        for path in (ROOT / root).rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            package = ".".join(path.parent.relative_to(ROOT).parts)
            assert package in PACKAGES, f"{path.relative_to(ROOT)}: its folder is not a package the wheel ships"
            assert any(fnmatch(path.name, pattern) for pattern in data.get(package, ())), \
                f"{path.relative_to(ROOT)} is not in [tool.setuptools.package-data]"
