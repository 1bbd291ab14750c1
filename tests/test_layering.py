"""libloop stays importable anywhere: no UI, web, simulator or network-face imports (paho, zeroconf), hardware packages only lazily."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBLOOP = ROOT / "libloop"

#: Never imported by libloop, at any time.
FORBIDDEN = ("pygame", "flask", "sim", "webapp", "loopapp", "paho", "zeroconf")
#: Hardware and optional packages: only inside the functions that need them.
LAZY = ("spidev", "gpiod", "av", "pygame", "flask")

PROBE = r"""
import importlib, json, pkgutil, sys
import libloop
names, failures = [], {}
for info in pkgutil.walk_packages(libloop.__path__, "libloop."):
    try:
        importlib.import_module(info.name)
        names.append(info.name)
    except Exception as exc:
        failures[info.name] = f"{type(exc).__name__}: {exc}"
roots = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"modules": names, "failures": failures, "roots": roots}))
"""


def test_importing_every_libloop_module_pulls_in_no_ui_web_sim_or_hardware_package() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failures"] == {}, "libloop modules that fail to import on their own"
    assert "libloop.display" in report["modules"] and "libloop.transport.spidev_bus" in report["modules"]
    leaked = sorted(set(report["roots"]) & set(FORBIDDEN + LAZY))
    assert leaked == [], f"importing libloop imported {leaked}"


def _import_time_nodes(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run when the module is imported (not function bodies, not TYPE_CHECKING)."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _import_time_nodes(node.orelse)
            continue
        yield node
        for field in ("body", "orelse", "finalbody"):
            yield from _import_time_nodes(getattr(node, field, []) or [])
        for handler in getattr(node, "handlers", []) or []:
            yield from _import_time_nodes(handler.body)


def _imported_roots(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name.split(".")[0] for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module.split(".")[0]]
    return []


def test_no_libloop_module_imports_hardware_or_optional_packages_at_top_level() -> None:
    offences = []
    for path in sorted(LIBLOOP.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in _import_time_nodes(tree.body):
            for root in _imported_roots(node):
                if root in LAZY or root in FORBIDDEN:
                    offences.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {root}")
    assert offences == []


def test_the_scan_itself_catches_a_top_level_import() -> None:
    tree = ast.parse(
        "import os\nif True:\n    import spidev\ndef f():\n    import gpiod\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import av\ntry:\n    import pygame\nexcept ImportError:\n    pass\n"
    )
    roots = [r for node in _import_time_nodes(tree.body) for r in _imported_roots(node)]
    assert "spidev" in roots and "pygame" in roots
    assert "gpiod" not in roots and "av" not in roots
