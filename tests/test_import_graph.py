"""Who may import whom, read from the source with ast (nothing is imported to check it):

- config/ imports no app (its URL configuration aside), nor does shop/, which the apps share;
- no module imports a helper from a management command (only a command's own Command class,
  which tests run);
- bench/ imports nothing from tests/ and edits no sys.path (its scripts run as python -m);
- testkit/ imports nothing from tests/, nor pytest (the benchmarks import it).
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
# The project's own apps, by their top-level package.
APPS = sorted(
    {
        config.name.split(".")[0]
        for config in apps.get_app_configs()
        if Path(config.path).parent == ROOT  # not the packages installed in .venv
    }
)


def sources(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "migrations" not in p.parts)


def imports(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, module, names imported from it) of every import in the file, however nested;
    relative imports resolved against the file's package."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            yield node.lineno, module, [alias.name for alias in node.names]


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def test_the_apps_are_found():
    assert {"orders", "licenses", "notifications", "dashboards", "workers"} <= set(APPS)


@pytest.mark.parametrize("folder", ["config", "shop"])
def test_config_and_shop_import_no_app(folder):
    found = [
        f"{where(path, line)} imports {module}"
        for path in sources(folder)
        if path.name != "urls.py" or folder != "config"
        for line, module, _ in imports(path)
        if module.split(".")[0] in APPS
    ]
    assert found == []


def test_no_module_imports_a_helper_from_a_management_command():
    found = []
    for folder in [*APPS, "shop", "config", "bench", "testkit", "tests"]:
        for path in sources(folder):
            for line, module, names in imports(path):
                if ".management.commands." not in f"{module}.":
                    continue
                helpers = [name for name in names if name != "Command"] if names else [module]
                if helpers:
                    found.append(f"{where(path, line)} imports {', '.join(helpers)} from {module}")
    assert found == []


@pytest.mark.parametrize("folder", ["bench", "testkit"])
def test_bench_and_the_test_kit_import_no_test_module(folder):
    banned = {"tests", "pytest"} if folder == "testkit" else {"tests"}
    found = [
        f"{where(path, line)} imports {module}"
        for path in sources(folder)
        for line, module, _ in imports(path)
        if module.split(".")[0] in banned
    ]
    assert found == []


def test_bench_edits_no_sys_path():
    found = [
        where(path, node.lineno)
        for path in [*sources("bench"), *sources("testkit")]
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if _edits_sys_path(node)
    ]
    assert found == []


def _edits_sys_path(node: ast.AST) -> bool:
    """sys.path.insert(…) and the other list edits, or sys.path (or a slice of it) assigned."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        edits = {"insert", "append", "extend", "remove", "pop", "clear"}
        return node.func.attr in edits and _is_sys_path(node.func.value)
    if isinstance(node, ast.Assign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(_is_sys_path(_unsubscript(target)) for target in targets)
    return False


def _unsubscript(node: ast.AST) -> ast.AST:
    return node.value if isinstance(node, ast.Subscript) else node


def _is_sys_path(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    )
