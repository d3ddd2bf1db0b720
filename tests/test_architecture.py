"""The map of the code, drawn from its imports (docs/DESIGN.md, "The map"): what may import what.

The layer rules are import-linter contracts (pyproject.toml); here, what import-linter does not
say: no import loops anywhere, and imports inside functions only for optional heavy packages.
Every `import` of every module is read with `ast`, wherever it stands (top of the module or
inside a function), so an import moved into a function to dodge a loop still counts.
"""
import ast
import functools
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

PACKAGES = ("nextword", "model", "service")
GENERATED = "_pb2"


@functools.cache
def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if GENERATED in path.name:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


@functools.cache
def imports_of(path: Path, name: str) -> list[tuple[str, bool]]:
    """(module imported, inside a function?) for every import of a module; `from x import y`
    is x.y where that is a module of ours, else x."""
    ours = modules()
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(node, inside: bool):
        for child in ast.iter_child_nodes(node):
            nested = inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((alias.name, nested) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1] + ([base] if base else []))
                found.extend((f"{base}.{a.name}" if f"{base}.{a.name}" in ours else base, nested) for a in child.names)
            visit(child, nested)

    visit(tree, False)
    return found


@functools.cache
def graph() -> dict[str, set[str]]:
    """Our modules -> our modules they import (a `from x import y` counts as x, and x.y if a module)."""
    ours = modules()
    edges = {}
    for name, path in ours.items():
        edges[name] = {target for target, _ in imports_of(path, name) if target in ours and target != name}
    return edges


@functools.cache
def external(name: str) -> set[str]:
    """Top-level packages outside ours that a module imports, itself and through our modules it imports."""
    ours, edges = modules(), graph()
    seen, todo, outside = set(), [name], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        outside |= {t.split(".")[0] for t, _ in imports_of(ours[current], current) if t.split(".")[0] not in PACKAGES}
        todo.extend(edges[current])
    return outside


def test_no_import_loops():
    edges = graph()
    state: dict[str, int] = {}
    loops = []

    def walk(node, trail):
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                loops.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                walk(target, trail + [target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            walk(node, [node])
    assert not loops, "import loops:\n" + "\n".join(loops)


def test_the_layer_rules_hold():
    """The map's rules are import-linter contracts in pyproject.toml (the model side never imports
    the service, the engine no torch/onnx/gRPC nor another room, the clients nothing of the server
    core, serving no torch); `lint-imports` fails on a broken one and on a contract naming a module
    that does not exist."""
    proc = subprocess.run([str(Path(sys.executable).with_name("lint-imports"))], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Contracts: 4 kept, 0 broken." in proc.stdout


# Imports inside functions are kept for what is heavy and optional at that point only: torch
# and onnx and wordfreq (the 'train' extra: `--help` and serving work without them), the default corpus
# package (the 'data' extra), and the subcommand a `nextword` call names (nextword/cli.py).
OPTIONAL = {"torch", "onnx", "onnxscript", "chitchat_dataset", "wordfreq", "onnxruntime.quantization", "importlib"}


def test_imports_inside_functions_are_only_for_optional_heavy_packages():
    odd = []
    for name, path in modules().items():
        for target, inside in imports_of(path, name):
            if inside and not any(target == o or target.startswith(o + ".") for o in OPTIONAL):
                if target.startswith(PACKAGES) and not _optional_through(target):
                    odd.append(f"{name}: {target}")
                elif not target.startswith(PACKAGES):
                    odd.append(f"{name}: {target}")
    assert not odd, "imports inside functions:\n" + "\n".join(sorted(set(odd)))


def _optional_through(target: str) -> bool:
    """A module of ours imported late because it needs torch (the training room)."""
    ours = modules()
    module = next((m for m in (target, target.rpartition(".")[0]) if m in ours), None)
    return module is not None and "torch" in external(module)
