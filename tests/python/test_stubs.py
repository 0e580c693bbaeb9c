"""The hand-written stub of the native module declares exactly what the module defines."""

from __future__ import annotations

import ast
from pathlib import Path

import ingot
from ingot import _ingot


def _declared(tree: ast.Module) -> dict[str, set[str]]:
    """Top-level names of the stub, each with the members its class declares."""
    out: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            members = {n.name for n in getattr(node, "body", []) if isinstance(n, ast.FunctionDef)}
            out[node.name] = members
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = set()
    return out


def test_the_stub_matches_the_native_module() -> None:
    stub = Path(ingot.__file__).with_name("_ingot.pyi")
    declared = _declared(ast.parse(stub.read_text()))
    defined = {n for n in dir(_ingot) if not n.startswith("__") or n == "__version__"}
    assert set(declared) == defined
    for cls in ("Model", "Prediction"):
        native = {n for n in dir(getattr(_ingot, cls)) if not n.startswith("_")}
        assert declared[cls] == native, cls


def test_the_package_is_typed() -> None:
    assert Path(ingot.__file__).with_name("py.typed").is_file()
