"""The project's packages import downwards only: the import graph between its top-level packages, read from
the source (ast: no module is imported), has no edge that runs up a floor and no cycle.

The floors, lowest first (a package imports only from floors below its own):

  greedyhash_common                   framework-free: data, metric, state dicts, the shared option checks
  models                              the models' key layouts (the converter, the products and the suite)
  torch_impl, paddle_impl             the two products, mirrors of each other
  weights_convert                     the converter between their checkpoints
  alignment                           the suite that proves the two products agree
  benchmarks, tools                   measurements and tools built on all of the above
  tests                               the tests of everything
"""
import ast
import os

import pytest

from tests.conftest import PROJECT_ROOT

FLOORS = (("greedyhash_common",), ("models",), ("torch_impl", "paddle_impl"), ("weights_convert",), ("alignment",),
          ("benchmarks", "tools"), ("tests",))
FLOOR_OF = {package: floor for floor, packages in enumerate(FLOORS) for package in packages}


def top_level_packages(root):
    return sorted(name for name in os.listdir(root) if os.path.isfile(os.path.join(root, name, "__init__.py")))


def imported_names(source, package):
    """The absolute names a module's imports (anywhere in it, functions included) start from; a relative
    import stays inside `package`."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield package if node.level else node.module


def import_edges(root):
    """{(importer, imported): first "path:line" that makes the edge} between the top-level packages of `root`."""
    packages = top_level_packages(root)
    edges = {}
    for package in packages:
        for folder, _, files in sorted(os.walk(os.path.join(root, package))):
            for name in sorted(file for file in files if file.endswith(".py")):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as handle:
                    source = handle.read()
                for imported in imported_names(source, package):
                    top = imported.split(".")[0]
                    if top in packages and top != package:
                        edges.setdefault((package, top), os.path.relpath(path, root))
    return edges


def upward_edges(edges):
    """The edges from a floor to a floor above it (or to a package no floor holds), each with where it is made."""
    return sorted(f"{importer} -> {imported} ({place})" for (importer, imported), place in edges.items()
                  if FLOOR_OF.get(imported, len(FLOORS)) > FLOOR_OF.get(importer, -1))


def cycles(edges):
    """Each cycle of the package graph, once, as "a -> b -> a"."""
    graph = {}
    for importer, imported in edges:
        graph.setdefault(importer, set()).add(imported)
    found = set()

    def walk(path):
        for following in sorted(graph.get(path[-1], ())):
            if following == path[0]:
                start = path.index(min(path))
                found.add(" -> ".join(path[start:] + path[:start] + [min(path)]))
            elif following not in path:
                walk(path + [following])

    for package in sorted(graph):
        walk([package])
    return sorted(found)


def test_every_package_has_a_floor():
    assert sorted(set(top_level_packages(PROJECT_ROOT)) - set(FLOOR_OF)) == []


def test_no_import_runs_upward_and_none_makes_a_cycle():
    edges = import_edges(PROJECT_ROOT)
    assert upward_edges(edges) == []
    assert cycles(edges) == []


def _tree(root, modules):
    for path, source in modules.items():
        os.makedirs(os.path.join(root, os.path.dirname(path)), exist_ok=True)
        with open(os.path.join(root, path), "w", encoding="utf-8") as handle:
            handle.write(source)


@pytest.fixture
def small_project(tmp_path):
    _tree(tmp_path, {"greedyhash_common/__init__.py": "", "models/__init__.py": "import greedyhash_common\n",
                     "weights_convert/__init__.py": "", "alignment/__init__.py": "",
                     "weights_convert/__main__.py": "from models import resnet\nfrom . import convert\n",
                     "alignment/pairs.py": "def f():\n    from weights_convert import convert\n"})
    return tmp_path


def test_an_upward_import_is_named_with_its_file_even_inside_a_function(small_project):
    assert upward_edges(import_edges(small_project)) == []
    _tree(small_project, {"weights_convert/__main__.py": "def main():\n    from alignment.pairs import f\n"})
    assert upward_edges(import_edges(small_project)) == [
        "weights_convert -> alignment (weights_convert/__main__.py)"]
    assert cycles(import_edges(small_project)) == ["alignment -> weights_convert -> alignment"]


def test_a_cycle_within_one_floor_is_named(small_project):
    _tree(small_project, {"torch_impl/__init__.py": "import paddle_impl.model\n",
                          "paddle_impl/__init__.py": "from torch_impl import model\n"})
    assert upward_edges(import_edges(small_project)) == []
    assert cycles(import_edges(small_project)) == ["paddle_impl -> torch_impl -> paddle_impl"]


def test_a_package_without_a_floor_is_named(small_project):
    _tree(small_project, {"scratch/__init__.py": "", "models/layouts.py": "import scratch\n"})
    assert upward_edges(import_edges(small_project)) == ["models -> scratch (models/layouts.py)"]
