"""The folder layout is the architecture: which package may import which, read from the source itself.

Data flows one way (capture -> runtime -> sinks -> dashboard). The runtime is what a line PC installs, so it
never imports the training, export or study code, nor TensorFlow; the dashboard holds no model logic; and
nothing in the product imports the studies, which measure it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TENSORFLOW = {"tensorflow", "keras", "tf2onnx"}
FORBIDDEN = {
    "edge_runtime": {"training", "export", "studies", "dashboard"} | TENSORFLOW,
    "dashboard": {"training", "export", "studies", "bench"} | TENSORFLOW,
    "export": {"studies", "dashboard"},
    "training": {"export", "studies", "dashboard"},  # export reads what training wrote, never the reverse
    "bench": {"studies", "dashboard"},
}


def imported_packages(path: Path) -> set[str]:
    """The top-level names of every module ``path`` imports, at any depth of the file (lazy imports too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_imported_packages_sees_lazy_and_dotted_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import os.path\n\ndef f():\n    from training.profiles import x\n    import keras as k\n"
                      "from . import sibling\n")
    assert imported_packages(source) == {"os", "training", "keras"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_the_layout_allows(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    crossings = {str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[package]) for path in files}
    assert {path: names for path, names in crossings.items() if names} == {}


def test_a_package_of_an_extra_names_the_extra_it_needs():
    from edge_runtime.extras import require

    require("export", "train", "json")  # present: nothing to say
    with pytest.raises(ImportError, match=r"export needs the 'train' extra, which this install lacks "
                                          r"\(no_such_module_xyz missing\): pip install '.\[train\]'"):
        require("export", "train", "json", "no_such_module_xyz")
