"""The package's layers, read from its imports (function-level ones included): imports point down only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fineface_ui"
LAYERS = ("engine", "hub", "faces", "web", "evaluation")
SHARED = {"fineface_ui.aus", "fineface_ui.errors", "fineface_ui.settings", "fineface_ui.edit_settings"}
# Stand-ins are for tests, the benchmark and the one command-line path that asks for random weights.
STANDIN_USERS = {("fineface_ui.studio", "with_random_weights"), ("fineface_ui.cli", "au_reader"),
                 ("fineface_ui.evaluation.studios", "stand_in_clip")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """What an import names, written absolutely: `from ..web import session` names fineface_ui.web.session,
    and module_of() cuts a name that is no module (a class, a function) back to its module."""
    base = module.split(".")[:len(module.split(".")) - node.level + is_package] if node.level else []
    source = ".".join([*base, *([node.module] if node.module else [])])
    return [f"{source}.{alias.name}" for alias in node.names]


def imports(path: Path) -> list[tuple[str, str | None]]:
    """(imported module, enclosing function or None) for every fineface_ui import in a file."""
    module, found = module_name(path), []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, function or child.name)
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                found.extend((name, function) for name in absolute(module, path.name == "__init__.py", child))
            visit(child, function)

    visit(ast.parse(path.read_text()), None)
    return [(name, function) for name, function in found if name.split(".")[0] == "fineface_ui"]


def module_of(name: str, modules: set[str]) -> str:
    """The module an imported name lives in (`fineface_ui.engine.pipeline.FineFacePipeline` -> its module)."""
    while name not in modules:
        name = name.rpartition(".")[0]
    return name


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}
GRAPH = {module: [(module_of(name, set(MODULES)), function) for name, function in imports(path)]
         for module, path in MODULES.items()}


def layer(module: str) -> str:
    """The package under fineface_ui that a module sits in or is (fineface_ui.web is the web layer), else top."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else "top"


def test_every_module_sits_in_a_layer_or_on_top():
    packages = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    assert packages == {*LAYERS, "standins", "bench"}


def test_the_hub_layer_imports_nothing_but_itself_and_the_shared_vocabulary():
    wrong = [(module, target) for module, edges in GRAPH.items() if layer(module) == "hub"
             for target, _ in edges if layer(target) != "hub" and target not in SHARED]
    assert not wrong


@pytest.mark.parametrize("lower", ["engine", "faces", "hub"])
def test_no_lower_layer_imports_the_web_layer(lower):
    wrong = [(module, target) for module, edges in GRAPH.items() if layer(module) == lower
             for target, _ in edges if layer(target) == "web"]
    assert not wrong


@pytest.mark.parametrize("lower", ["engine", "faces", "hub", "web"])
def test_the_evaluation_sits_on_top_beside_the_command_line(lower):
    wrong = [(module, target) for module, edges in GRAPH.items() if layer(module) == lower
             for target, _ in edges if layer(target) == "evaluation"]
    assert not wrong


def test_only_the_benchmark_and_the_random_weights_path_import_stand_ins():
    wrong = []
    for module, edges in GRAPH.items():
        for target, function in edges:
            from_tools = layer(module) in ("standins", "bench")
            if layer(target) in ("standins", "bench") and not from_tools and (module, function) not in STANDIN_USERS:
                wrong.append((module, function, target))
            if layer(target) == "bench" and layer(module) != "bench":
                wrong.append((module, function, target))
    assert not wrong


def test_the_imports_have_no_cycles():
    graph = {module: {target for target, _ in edges if target != module and target in GRAPH}
             for module, edges in GRAPH.items()}
    done, on_path, cycles = set(), [], []

    def walk(module: str) -> None:
        if module in on_path:
            cycles.append(on_path[on_path.index(module):] + [module])
            return
        if module in done:
            return
        on_path.append(module)
        for target in sorted(graph[module]):
            walk(target)
        on_path.pop()
        done.add(module)

    for module in sorted(graph):
        walk(module)
    assert not cycles


def test_the_rules_see_function_level_imports():
    # The rules are only as good as the import reader: studio imports the stand-ins inside a function.
    assert ("fineface_ui.standins.tiny_models", "with_random_weights") in GRAPH["fineface_ui.studio"]


def test_every_public_name_still_comes_from_the_package_itself():
    # The layers are inside; users import from fineface_ui, whatever module a name lives in now.
    import fineface_ui

    missing = [name for name in fineface_ui.__all__ if getattr(fineface_ui, name, None) is None]
    assert not missing and {"FineFacePipeline", "FineFaceIdentityPipeline", "FaceEmbedder", "Studio"} <= set(
        fineface_ui.__all__)
