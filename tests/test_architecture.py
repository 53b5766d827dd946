"""The import layers of docs/architecture.md: every import under src/spd (in functions too, so that
none can hide a cycle) goes to its own layer or a lower one, and the packages import each other
without cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).parent.parent / "src" / "spd"
# Lowest first; packages on one line share a layer (they may import each other, without cycles).
LAYERS = [
    ["ops"],
    ["labels"],
    ["data"],
    ["metrics"],
    ["tasks"],
    ["model", "vis", "densepose_rcnn"],
    ["losses"],
    ["inference"],
    ["config", "weights"],
    ["evaluation"],
    ["training"],
    ["predict", "export", "serve", "convert", "demo", "study"],
    ["cli", "__main__"],
]
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}


def package_of(module: str) -> str | None:
    """``spd.model.trunk`` -> ``model``; the top-level ``spd`` package itself -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "spd" else None


def _exists(module: str) -> bool:
    path = SRC.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports() -> list[tuple[str, str, int]]:
    """(importing module, imported module, line) for every spd import in src/spd."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(relative.parts[:-1] if relative.name == "__init__" else relative.parts)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if node.module is None:  # "from . import x": x is a module of the package, or a name in it
                    found += [(module, f"{target}.{alias.name}" if _exists(f"{target}.{alias.name}") else target,
                               node.lineno) for alias in node.names]
                else:
                    found.append((module, target, node.lineno))
            elif isinstance(node, ast.Import):
                found += [(module, alias.name, node.lineno) for alias in node.names]
    return [(a, b, line) for a, b, line in found if b == "spd" or b.startswith("spd.")]


def test_every_package_has_a_layer():
    packages = {p.name if p.is_dir() else p.stem for p in SRC.iterdir()
                if (p.is_dir() and (p / "__init__.py").is_file()) or (p.suffix == ".py" and p.stem != "__init__")}
    assert packages == set(RANK), f"add {sorted(packages - set(RANK))} to LAYERS (and docs/architecture.md)"


def test_imports_go_down_the_layers():
    upward = []
    for source, target, line in imports():
        a, b = package_of(source), package_of(target)
        if a is None or b is None or a == b:
            continue  # the top-level package's lazy API, and imports within a package
        if RANK[b] > RANK[a]:
            upward.append(f"{source}:{line} imports {target} ({a}, layer {RANK[a]} -> {b}, layer {RANK[b]})")
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_packages_import_each_other_without_cycles():
    graph: dict[str, set[str]] = {}
    for source, target, _ in imports():
        a, b = package_of(source), package_of(target)
        if a and b and a != b:
            graph.setdefault(a, set()).add(b)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_modules_import_each_other_without_cycles():
    modules = {".".join(p.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__")
               for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for source, target, _ in imports():
        # "from .x import y" names module x, or a name of package x: resolve to the module.
        while target not in modules and "." in target:
            target = target.rsplit(".", 1)[0]
        if target != source and not source.startswith(target + "."):  # a package's own __init__
            graph.setdefault(source, set()).add(target)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_test_can_fail():
    """The checks see a planted upward import and a planted cycle."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    assert RANK["model"] < RANK["training"] < RANK["cli"]


def test_imports_inside_functions_only_where_start_up_time_needs_them():
    """An spd import inside a function is allowed only in the command line's modules (so that a
    command loads Lightning and the pipelines it does not use only when it runs them); anywhere else
    it would be the sign of a dodged cycle."""
    hidden = []
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).parts[0] == "cli":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("spd")):
                    hidden.append(f"{path.relative_to(SRC.parent)}:{node.lineno}")
                elif isinstance(node, ast.Import) and any(a.name.startswith("spd") for a in node.names):
                    hidden.append(f"{path.relative_to(SRC.parent)}:{node.lineno}")
    assert not hidden, "spd imports inside functions outside cli/:\n" + "\n".join(hidden)


def test_training_and_the_gpu_scripts_import_without_the_checkpoint_and_video_packages():
    """A GPU machine's image has PyTorch and Lightning but may lack google-crc32c (only for
    TensorFlow checkpoints) and PyAV (only for videos): training, prediction, the study and the
    GPU check must import without them, as benchmarks/gpu_check.sh runs them there."""
    code = (
        "import sys\n"
        "for name in ('google_crc32c', 'av'):\n"
        "    sys.modules[name] = None  # import fails as if not installed\n"
        "sys.path.insert(0, 'benchmarks')\n"
        "import spd.training, spd.predict, spd.serve, spd.cli.main, study, gpu_check\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=SRC.parent.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
