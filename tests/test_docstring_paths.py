"""Docstrings that say where things are stay true: every file (`alignment/paths.py`; `torch_side.py` beside
the module or beside another file the same docstring names) and every dotted name of the project
(`alignment.pairs.greedyhash.weight_makers`, `alignment.pairs.base.ModelPair`) named in a docstring of
alignment/ exists. Read from the source (ast); a dotted name's module part must be a module or package and
the name after it defined at the top of it."""
import ast
import os
import re

import pytest

from tests.conftest import PROJECT_ROOT

PACKAGES = ("alignment", "benchmarks", "greedyhash_common", "models", "paddle_impl", "tests", "tools", "torch_impl",
            "weights_convert")
FILE_NAME = re.compile(r"(?<![\w.])((?:[\w-]+/)*\w+\.py)\b")
DOTTED_NAME = re.compile(r"(?<![\w./])((?:%s)(?:\.\w+)+)" % "|".join(PACKAGES))


def docstrings(path):
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in [tree, *ast.walk(tree)]:
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            text = ast.get_docstring(node, clean=False)
            if text:
                yield text


def top_level_names(path):
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(name.id for target in targets for name in ast.walk(target) if isinstance(name, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def file_exists(name, folders):
    return any(os.path.isfile(os.path.join(folder, name)) for folder in folders)


def dotted_name_exists(name, root):
    """The longest module prefix of `name` exists, and the part after it, if any, starts with a name the module
    defines."""
    parts = name.split(".")
    path = root
    for index, part in enumerate(parts):
        package, module = os.path.join(path, part), os.path.join(path, part + ".py")
        if os.path.isfile(os.path.join(package, "__init__.py")):
            path = package
            continue
        if os.path.isfile(module):
            rest = parts[index + 1:]
            return not rest or rest[0] in top_level_names(module)
        return index > 0 and part in top_level_names(os.path.join(path, "__init__.py"))
    return True


def missing_names(root, package="alignment"):
    """["file: name", ...] for each path or dotted name a docstring under `package` names that does not exist."""
    missing = []
    for folder, _, files in sorted(os.walk(os.path.join(root, package))):
        for file in sorted(name for name in files if name.endswith(".py")):
            path = os.path.join(folder, file)
            for text in docstrings(path):
                where, files = os.path.relpath(path, root), FILE_NAME.findall(text)
                folders = [folder, root, *(os.path.join(root, os.path.dirname(name)) for name in files if "/" in name)]
                missing += [f"{where}: {name}" for name in files if not file_exists(name, folders)]
                missing += [f"{where}: {name}" for name in DOTTED_NAME.findall(text.replace("`", " "))
                            if not dotted_name_exists(name.rstrip("."), root)]
    return sorted(set(missing))


def test_every_place_a_docstring_of_alignment_names_exists():
    assert missing_names(PROJECT_ROOT) == []


@pytest.mark.parametrize("docstring, named", [
    ('"""Made by alignment/pairs/nowhere.py."""', "alignment/pairs/nowhere.py"),
    ('"""Beside it: gone_side.py."""', "gone_side.py"),
    ('"""alignment/pairs/base.py, gone.py"""', "gone.py"),
    ('"""See alignment.pairs.greedyhash.gone_module."""', "alignment.pairs.greedyhash.gone_module"),
    ('"""See alignment.pairs.base.NoSuchPair."""', "alignment.pairs.base.NoSuchPair"),
])
def test_a_place_that_moved_is_named_with_its_file(docstring, named, tmp_path):
    (tmp_path / "alignment" / "pairs" / "greedyhash").mkdir(parents=True)
    for package in ("alignment", "alignment/pairs", "alignment/pairs/greedyhash"):
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "alignment" / "pairs" / "base.py").write_text('"""alignment/pairs/greedyhash/__init__.py"""\n'
                                                              "class ModelPair:\n    pass\n")
    (tmp_path / "alignment" / "pairs" / "greedyhash" / "torch_side.py").write_text("")
    (tmp_path / "alignment" / "pairs" / "other.py").write_text("")
    (tmp_path / "alignment" / "pairs" / "greedyhash" / "module.py").write_text(
        '"""torch_side.py beside it; alignment.pairs.base.ModelPair; alignment.pairs.greedyhash;\n'
        'alignment/pairs/base.py, other.py."""\n')
    assert missing_names(tmp_path) == []
    (tmp_path / "alignment" / "pairs" / "greedyhash" / "module.py").write_text(docstring + "\n")
    assert missing_names(tmp_path) == [f"alignment/pairs/greedyhash/module.py: {named}"]
