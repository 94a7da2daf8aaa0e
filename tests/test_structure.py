"""How the code reads, checked: modules with one job stay small, functions short, every
public definition says what it is for, and the tests keep their layout."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for p in sorted((ROOT / "bridge").rglob("*.py")) if "migrations" not in p.parts]
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
MAX_DOCSTRING_LINES = 16


def test_no_module_over_600_lines_and_no_function_over_80() -> None:
    too_long = []
    for path in SOURCES:
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}: {node.name} is {length} lines")
    assert too_long == []


def test_every_public_definition_says_briefly_what_it_is_for() -> None:
    silent, wordy = [], []
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        for node in tree.body:
            public = isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name[:1] != "_"
            if public and ast.get_docstring(node) is None:
                silent.append(f"{path.relative_to(ROOT)}: {node.name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef):
                doc = ast.get_docstring(node) or ""
                if len(doc.splitlines()) > MAX_DOCSTRING_LINES:
                    wordy.append(f"{path.relative_to(ROOT)}: {getattr(node, 'name', '(module)')}")
    assert silent == [] and wordy == []


def test_end_to_end_tests_carry_their_marker_and_no_test_module_imports_another() -> None:
    unmarked = [
        p.name
        for p in sorted((ROOT / "tests" / "e2e").glob("test_*.py"))
        if "pytestmark = pytest.mark.e2e" not in p.read_text()
    ]
    borrowing = [
        f"{p.relative_to(ROOT)}: {line.strip()}"
        for p in sorted((ROOT / "tests").rglob("*.py"))
        for line in p.read_text().splitlines()
        if re.match(r"\s*from tests\.(?:[\w.]+\.)?test_\w+ import", line)
    ]
    assert unmarked == [] and borrowing == []
