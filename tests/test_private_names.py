"""A module's private names (a leading underscore) stay in their module: no other module of the project,
tests included, imports one, reads one off a module it imported, or patches one; and what other modules take
from the suite's orchestration (alignment.suite) is its declared public surface (__all__). Read from the source
(ast: no module is imported)."""
import ast
import os

from tests.conftest import PROJECT_ROOT
from tests.test_import_layers import top_level_packages

PACKAGES = tuple(dict.fromkeys((*top_level_packages(PROJECT_ROOT), "tests")))
ORCHESTRATION = "alignment.suite"


def is_private(name):
    return name.startswith("_") and not name.startswith("__")


def module_of(path, root):
    """The dotted name of the module at `path` ("alignment.layers" of alignment/layers/__init__.py)."""
    parts = os.path.relpath(path, root)[:-len(".py")].split(os.sep)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(node, module, path):
    """The absolute module an ImportFrom reads from."""
    if not node.level:
        return node.module
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return ".".join(part for part in (package, node.module) if part)


def is_project_module(name, root):
    base = os.path.join(root, *name.split("."))
    return name.split(".")[0] in PACKAGES and (os.path.isfile(base + ".py") or os.path.isdir(base))


def project_modules(root):
    for package in PACKAGES:
        for folder, _, files in sorted(os.walk(os.path.join(root, package))):
            for name in sorted(file for file in files if file.endswith(".py")):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as handle:
                    yield path, module_of(path, root), ast.parse(handle.read())


def imports_of(tree, module, path, root):
    """(names bound to project modules, [(line, imported module, name)]) of one module's imports."""
    aliases, taken = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update(alias.asname for alias in node.names if alias.asname and is_project_module(alias.name, root))
        elif isinstance(node, ast.ImportFrom):
            source = absolute(node, module, path)
            for alias in node.names:
                if is_project_module(f"{source}.{alias.name}", root):
                    aliases.add(alias.asname or alias.name)
                else:
                    taken.append((node.lineno, source, alias.name))
    return aliases, taken


def private_reads(tree, aliases):
    """[(line, "module.name")] of private names read off (or patched on) a module alias."""
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and is_private(node.attr)):
            found.append((node.lineno, f"{node.value.id}.{node.attr}"))
        elif (isinstance(node, ast.Call) and len(node.args) >= 2 and isinstance(node.args[0], ast.Name)
              and node.args[0].id in aliases and isinstance(node.args[1], ast.Constant)
              and isinstance(node.args[1].value, str) and is_private(node.args[1].value)):
            found.append((node.lineno, f"{node.args[0].id}.{node.args[1].value}"))
    return found


def violations(root):
    """"path:line: what" of every private name used across modules, and every name taken from the
    orchestration that its __all__ does not declare."""
    public = declared_surface(root)
    found = []
    for path, module, tree in project_modules(root):
        where = os.path.relpath(path, root)
        aliases, taken = imports_of(tree, module, path, root)
        for line, source, name in taken:
            if is_private(name) and is_project_module(source, root) and source != module:
                found.append(f"{where}:{line}: imports {source}.{name}")
            elif source == ORCHESTRATION and name not in public:
                found.append(f"{where}:{line}: imports {source}.{name}, not in its __all__")
        found += [f"{where}:{line}: reads {name}" for line, name in private_reads(tree, aliases)]
    return found


def declared_surface(root):
    """The names alignment.suite's __all__ declares."""
    with open(os.path.join(root, *ORCHESTRATION.split(".")) + ".py", encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == "__all__" for target in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


def test_no_private_name_crosses_a_module():
    assert violations(PROJECT_ROOT) == []


def test_the_orchestrations_surface_is_declared_and_defined():
    import alignment.suite

    assert declared_surface(PROJECT_ROOT) and all(hasattr(alignment.suite, name) for name in alignment.suite.__all__)
    assert not any(is_private(name) for name in alignment.suite.__all__)


def copy_of_project(tmp_path, planted):
    """A copy of the project's packages with `planted` {path: source} added."""
    import shutil

    for package in PACKAGES:
        shutil.copytree(os.path.join(PROJECT_ROOT, package), tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for path, source in planted.items():
        (tmp_path / path).write_text(source)
    return str(tmp_path)


def test_a_planted_private_import_or_read_is_named_with_its_file(tmp_path):
    root = copy_of_project(tmp_path, {
        "alignment/planted_import.py": "from .check import _structural_problem\n",
        "tools/planted_read.py": "from alignment import check\n\nPROBLEM = check._scale\n",
        "tests/planted_patch.py": "from alignment import coverage\n\n\ndef test(monkeypatch):\n"
                                  "    monkeypatch.setattr(coverage, '_code_row', None)\n",
        "benchmarks/planted_orchestration.py": "from alignment.suite import keep_arrays, start_side\n"})
    assert sorted(violations(root)) == ["alignment/planted_import.py:1: imports alignment.check._structural_problem",
                                "benchmarks/planted_orchestration.py:1: imports alignment.suite.start_side, not in"
                                " its __all__",
                                "tests/planted_patch.py:5: reads coverage._code_row",
                                "tools/planted_read.py:3: reads check._scale"]
