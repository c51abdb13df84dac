"""The essay's house, checked on the source: what import-linter cannot see.

- Actions build no SQL: persistence lives in each service's models layer.
- No import inside a function (a sign the design is wrong).
- No source module grows past the size a reader holds in their head.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("accounts", "notifications", "provisioning", "stats")
SQL_BUILDERS = frozenset(
    {"text", "insert", "update", "select", "delete", "bindparam", "literal_column", "func"}
)
MAX_MODULE_LINES = 300
SOURCE_ROOTS = ("contracts/src", "shared/src", "services", "tools")


def _action_modules() -> list[Path]:
    found: list[Path] = []
    for service in SERVICES:
        package = ROOT / "services" / service / "src" / service
        found += [package / "actions.py"] if (package / "actions.py").exists() else []
        found += sorted((package / "actions").glob("*.py"))
    return found


def _source_modules() -> list[Path]:
    modules: list[Path] = []
    for root in SOURCE_ROOTS:
        for path in sorted((ROOT / root).rglob("*.py")):
            parts = set(path.relative_to(ROOT).parts)
            if parts & {"tests", "migrations", ".venv"}:
                continue
            modules.append(path)
    return modules


SQL_MODULES = {"sqlalchemy", "sqlalchemy.sql", "sqlalchemy.sql.expression"}


def sql_builders_imported(tree: ast.AST) -> list[str]:
    """Names of SQL-building constructs imported from sqlalchemy by this module."""
    found: list[str] = []
    for node in ast.walk(tree):
        module = node.module or "" if isinstance(node, ast.ImportFrom) else ""
        if module in SQL_MODULES or module.startswith("sqlalchemy.dialects"):
            found += [alias.name for alias in node.names if alias.name in SQL_BUILDERS]
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name == "sqlalchemy"]
    return found


# Imports are statements: only statement bodies are searched, not the expressions in them.
STATEMENT_LISTS = ("body", "orelse", "finalbody", "handlers", "cases")
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
# A line an import inside a function can be on: indented, or after a ``:`` or ``;`` (``def f():
# import os``). Only modules holding such a line are parsed (most hold none).
MAYBE_NESTED_IMPORT = re.compile(r"(?m)^(?:[ \t]+|.*[:;][ \t]*)(?:import|from)[ \t]")


def imports_inside_functions(tree: ast.AST, in_function: bool = False) -> list[int]:
    """Line numbers of import statements nested in a function body."""
    lines: list[int] = []
    for field in STATEMENT_LISTS:
        for child in getattr(tree, field, ()):
            if in_function and isinstance(child, ast.Import | ast.ImportFrom):
                lines.append(child.lineno)
            lines += imports_inside_functions(child, in_function or isinstance(child, FUNCTIONS))
    return lines


def test_the_checks_see_what_they_look_for() -> None:
    """Guards against a checker that can never fail."""
    assert sql_builders_imported(ast.parse("from sqlalchemy import select, Table")) == ["select"]
    assert sql_builders_imported(ast.parse("from sqlalchemy.dialects.postgresql import insert"))
    assert sql_builders_imported(ast.parse("import sqlalchemy")) == ["sqlalchemy"]
    assert not sql_builders_imported(ast.parse("from sqlalchemy.orm import Session"))
    assert imports_inside_functions(ast.parse("def f():\n    import os\n")) == [2]
    nested = "class C:\n  def m(self):\n    if x:\n      pass\n    else:\n      try:\n"
    nested += "        pass\n      except E:\n        async def g():\n          from a import b\n"
    assert imports_inside_functions(ast.parse(nested)) == [10]
    assert imports_inside_functions(ast.parse("import os\nclass C:\n    import re\n")) == []
    one_line = ("def f(): import os", "def f(): x = 1; import os")
    for nested_import in ("def f():\n    import os", *one_line):
        assert MAYBE_NESTED_IMPORT.search(f"import re\nfrom a import b\n{nested_import}\n")
    assert not MAYBE_NESTED_IMPORT.search("import re\nfrom a import (\n    b,\n)\n")
    assert _action_modules(), "no action modules found: the layout moved"


@pytest.mark.parametrize("path", _action_modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_actions_build_no_sql(path: Path) -> None:
    builders = sql_builders_imported(ast.parse(path.read_text()))
    assert not builders, f"{path.name} builds SQL with {builders}: move it into models"


def test_no_import_inside_a_function() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _source_modules()
        if MAYBE_NESTED_IMPORT.search(text := path.read_text())
        for line in imports_inside_functions(ast.parse(text))
    ]
    assert not offenders, f"imports inside functions: {offenders}"


def test_no_module_past_the_size_a_reader_holds() -> None:
    too_long = {
        str(path.relative_to(ROOT)): length
        for path in _source_modules()
        if (length := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"
