"""The import graph of the package (docs/architecture.md): one-way arrows and no cycles.

Read from the source with ``ast`` (every ``import`` inside the package, top level or inside a
function), so an arrow that only runs on some code path counts too.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOMS = ("core", "addon", "renderers", "flame_assets")


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or "emoflame"


def _imports(path: Path) -> set[str]:
    """The package's modules that ``path`` imports (relative and ``emoflame.``-absolute)."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
                names = [f"{target}.{a.name}" if target else a.name for a in node.names]
            elif node.module and node.module.startswith("emoflame"):
                target = node.module[len("emoflame."):] if node.module != "emoflame" else ""
                names = [f"{target}.{a.name}" if target else a.name for a in node.names]
            else:
                continue
            out.update(_resolve(n) or _resolve(target) for n in names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("emoflame."):
                    out.add(_resolve(alias.name[len("emoflame."):]))
    out.discard(None)
    out.discard(module)
    return out


def _resolve(name: str) -> str | None:
    """The module a dotted name lives in (``core.audio.load.SAMPLE_RATE`` → ``core.audio.load``)."""
    parts = name.split(".")
    while parts:
        candidate = REPO.joinpath(*parts)
        if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = [p for room in ROOMS for p in (REPO / room).rglob("*.py")] + [REPO / "cli.py", REPO / "__init__.py"]
    return {_module(p): _imports(p) for p in files if "__pycache__" not in p.parts}


def test_core_depends_on_nothing_outside_it_and_inference_not_on_training(graph):
    for module, targets in graph.items():
        if not module.startswith("core"):
            continue
        outside = {t for t in targets if not t.startswith("core")}
        assert not outside, f"{module} imports {outside}: core/ depends on neither the Blender side nor the CLI"
        if not module.startswith("core.train"):
            training = {t for t in targets if t.startswith("core.train")}
            assert not training, f"{module} imports {training}: inference must not depend on the training package"


def test_renderers_and_addon_never_import_the_cli(graph):
    for module, targets in graph.items():
        assert "cli" not in targets or module in ("addon.command",), f"{module} imports the CLI"


def test_the_import_graph_has_no_cycle(graph):
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt in graph and not state.get(nxt):
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [node])
