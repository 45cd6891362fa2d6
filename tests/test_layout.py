"""The tests mirror the package: each folder of tests/ (but support/ and data folders inside a test folder) is named
after a sub-package of robustbench_bytes, and no test module imports another (shared builders live in support/)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "robustbench_bytes"


def test_every_test_folder_is_named_after_a_sub_package():
    sub_packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))}
    assert folders - {"support"} <= sub_packages, f"test folders without a sub-package: {folders - sub_packages}"
    for folder in folders - {"support"}:
        assert list((TESTS / folder).glob("test_*.py")), f"tests/{folder}/ holds no tests"


def test_no_test_module_imports_another():
    test_modules = {p.stem for p in TESTS.rglob("test_*.py")}
    for path in TESTS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            imported = {name.split(".")[0] for name in names} & test_modules
            assert not imported, f"{path.relative_to(TESTS)} imports the test module {imported}: move what it shares " \
                                 "to tests/support/"
