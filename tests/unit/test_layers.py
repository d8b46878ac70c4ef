"""The package's layers: no import cycles, and no arrow pointing upward.

Top to bottom (a module may import only from its own layer, where allowed, or below):

  cli                       every command
  operate                   migrate, run, backup, rollback, phases, the sidecar
  initialize                phase 1: capture, collections, and the job secret the writer signs with
  writer | backfill | verify                   independent of each other
  settings | collection_versions               what every component is handed / records
  mapping | capture                            rows -> objects; rows -> outbox (independent)
  the shared adapters       store (every _s2w_* table), settings_base, retrying, weaviate/redis/sqlite
                            adapters, weaviate_deletes, sqlite_text, redaction, logs, local,
                            embed (embedders, the embedding cache)
  errors

``sqlite_to_weaviate/__init__.py`` re-exports the one-shot migration API (operate) and
``__main__`` runs the CLI; both sit above everything and are left out. grimp reads every
import, including those inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import grimp
import pytest
from grimp import Layer

PACKAGE = "sqlite_to_weaviate"
LAYERS = [
    Layer("cli"),
    Layer("operate"),
    Layer("initialize"),
    Layer("writer", "backfill", "verify", independent=True),
    Layer("settings", "collection_versions", independent=True),
    Layer("mapping", "capture", independent=True),
    Layer("settings_base", "retrying", "weaviate_deletes", "weaviate_adapter", "redis_adapter", "sqlite_db",
          "sqlite_text", "redaction", "store", "logs", "local", "embed", independent=False),
    Layer("errors"),
]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE)


def test_every_top_level_module_has_a_layer(graph):
    placed = {tail for layer in LAYERS for tail in layer.module_tails} | {"__main__"}
    tops = {m.split(".")[1] for m in graph.modules if m.count(".") >= 1}
    assert tops - placed == set(), "put the new module in a layer (tests/unit/test_layers.py)"


def test_no_import_points_upward_or_sideways_between_independent_parts(graph):
    illegal = graph.find_illegal_dependencies_for_layers(layers=LAYERS, containers={PACKAGE})
    lines = [f"{d.importer} -> {d.imported}: " + "; ".join(" -> ".join(route.heads and [
        *sorted(route.heads)[:1], *route.middle, *sorted(route.tails)[:1]]) for route in d.routes) for d in illegal]
    assert not lines, "\n".join(lines)


def test_no_import_cycles(graph):
    cycles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(importer=imported, imported=module):
                cycles.add(tuple(sorted((module, imported))))
    assert not cycles, cycles


MAX_LINES = 400
BEING_SPLIT: set[str] = set()  # modules allowed over MAX_LINES while a split is under way


def test_no_module_is_long_without_a_reason_at_its_top():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / PACKAGE
    long = []
    for path in sorted(root.rglob("*.py")):
        name = str(path.relative_to(root))
        text = path.read_text(encoding="utf-8")
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if len(text.splitlines()) > MAX_LINES and "longer than 400 lines" not in docstring.lower() \
                and name not in BEING_SPLIT:
            long.append(f"{name}: {len(text.splitlines())} lines")
    assert not long, "split these, or say at the top why they are longer than 400 lines: " + ", ".join(long)
