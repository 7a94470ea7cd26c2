"""The threat model in the code's shape: attacker code never imports the owner's side.

Attacker code is `molleak.attack` (context, methods, scores, searches, membership statistics),
`molleak.candidates` and `molleak.oracle`. It may not import, even lazily inside a function and
even through another module, the evaluation (`molleak.evaluate`), the plans that train victims on
private sets (`molleak.plans`, `molleak.victims.zoo`), the report or the CLI. The static check is
complemented by `tests/integration/test_attack_isolation.py`, which proves by what a run opens that
an attack never reads a training set.
"""

from __future__ import annotations

import ast
from pathlib import Path

import molleak

PACKAGE = Path(molleak.__file__).parent
ATTACKER = ("molleak.attack", "molleak.candidates", "molleak.oracle")
FORBIDDEN = ("molleak.evaluate", "molleak.plans", "molleak.report", "molleak.cli", "molleak.victims.zoo")


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every molleak module a file imports, at module level or inside functions."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("molleak"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            if mod.startswith("molleak"):
                found.add(mod)
                found.update(f"{mod}.{a.name}" for a in node.names)  # `from pkg import module`
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules} for name, path in modules.items()}


def _closure(graph: dict[str, set[str]], start: str) -> dict[str, list[str]]:
    """Every module reachable from `start`, with one import chain leading to it."""
    paths = {start: [start]}
    todo = [start]
    while todo:
        current = todo.pop()
        for nxt in graph.get(current, ()):
            if nxt not in paths:
                paths[nxt] = [*paths[current], nxt]
                todo.append(nxt)
    return paths


def _is(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_attacker_code_never_reaches_the_owners_side():
    graph = _graph()
    attacker = [m for m in graph if _is(m, ATTACKER)]
    assert len(attacker) > 15  # the check looks at real modules
    violations = []
    for module in attacker:
        for reached, chain in _closure(graph, module).items():
            if _is(reached, FORBIDDEN):
                violations.append(" -> ".join(chain))
    assert not violations, "attacker code imports the owner's side:\n" + "\n".join(sorted(violations)[:20])


def test_the_contract_check_catches_a_lazy_import_through_a_chain(tmp_path):
    """The check can fail: a lazy import inside a function is seen, and found through a chain."""
    fake = tmp_path / "molleak" / "attack" / "fake.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from molleak.evaluate.evaluate import evaluate_run\n")
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "molleak"
    try:
        assert "molleak.evaluate.evaluate" in _imports(fake)
    finally:
        PACKAGE = saved
    graph = _graph()
    graph["molleak.attack.scoring.base"] = graph["molleak.attack.scoring.base"] | {"molleak.evaluate.evaluate"}
    chain = _closure(graph, "molleak.attack.run").get("molleak.evaluate.evaluate")
    assert chain is not None and chain[0] == "molleak.attack.run" and "molleak.attack.scoring.base" in chain
