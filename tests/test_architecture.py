"""The shape of the code: which module may import which.

The import graph is read from the source with ``ast`` (nothing is imported), so a rule
holds for every module, also those no test imports. An edge is any import that runs:
at module level, in a class body, or inside a function (a deferred import still couples
the two modules, it only hides it from the import system); imports under
``if TYPE_CHECKING:`` are for the type checker and are not edges.

Rules (issue 14, DESIGN.md's layers):
- no cycle, counting every run-time edge: a cycle closed by an import inside a function
  is how the 20-module knot of the job queue was held together, so it counts;
- ``conversations`` imports no channel (``cybergine.channels.*``): channels depend on
  the conversation core through the channel interface, not the other way round;
- ``db`` imports no domain: it is the layer every domain stands on;
- only the job queue's composition root (``cybergine.jobs``) imports task modules:
  services defer by name (``cybergine.job_names``);
- a domain reaches ``web`` or ``dashboard`` only from its HTTP edge (``api.py``).

``ALLOWED`` lists what is still there and why; an entry that no longer matches fails
too, so the list can only shrink.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"
ROOT = "cybergine"

DOMAINS = frozenset(
    {
        "accounts",
        "analytics",
        "assistants",
        "catalog",
        "channels",
        "conversations",
        "knowledge",
        "llm",
        "mail",
        "onboarding",
        "privacy",
        "realtime",
        "shopify",
    }
)
HTTP_LAYERS = frozenset({"web", "dashboard"})
JOBS_COMPOSITION_ROOT = "cybergine.jobs"

# Known violations, each with the reason it is still there: (importer, imported).
_SCHEMA_ROOT = (
    "db.models is the schema's composition root: Alembic and the schema tests need the "
    "metadata of every table, so it names every domain's models"
)
_FROZEN_MIGRATION = (
    "a migration is history and never changes: it declares its encrypted columns with "
    "the column type of its day"
)
_HTTP_EDGE = "{} is the domain's HTTP edge (its api.py by another name)"
ALLOWED: Mapping[tuple[str, str], str] = {
    ("cybergine.db.models", "cybergine.accounts.models"): _SCHEMA_ROOT,
    ("cybergine.db.models", "cybergine.analytics.models"): _SCHEMA_ROOT,
    ("cybergine.db.models", "cybergine.analytics.gap_models"): _SCHEMA_ROOT,
    ("cybergine.db.models", "cybergine.analytics.api_usage_models"): _SCHEMA_ROOT,
    ("cybergine.db.models", "cybergine.analytics.embedding_usage_models"): _SCHEMA_ROOT,
    ("cybergine.db.models", "cybergine.assistants.models"): _SCHEMA_ROOT,
    ("cybergine.db.models", "cybergine.channels.whatsapp.models"): _SCHEMA_ROOT,
    ("cybergine.db.models", "cybergine.conversations.models"): _SCHEMA_ROOT,
    ("cybergine.db.models", "cybergine.conversations.csat_models"): _SCHEMA_ROOT,
    ("cybergine.db.models", "cybergine.knowledge.models"): _SCHEMA_ROOT,
    ("cybergine.db.models", "cybergine.mail.models"): _SCHEMA_ROOT,
    ("cybergine.db.models", "cybergine.privacy.audit"): _SCHEMA_ROOT,
    ("cybergine.db.models", "cybergine.privacy.organisation_export.models"): _SCHEMA_ROOT,
    ("cybergine.db.models", "cybergine.privacy.request_models"): _SCHEMA_ROOT,
    ("cybergine.db.models", "cybergine.privacy.retention_settings"): _SCHEMA_ROOT,
    ("cybergine.db.models", "cybergine.shopify.models"): _SCHEMA_ROOT,
    ("cybergine.db.models", "cybergine.shopify.sync_models"): _SCHEMA_ROOT,
    ("cybergine.db.models", "cybergine.catalog.models"): _SCHEMA_ROOT,
    ("cybergine.db.migrations.versions.0005_assistants", "cybergine.privacy.crypto"): (
        _FROZEN_MIGRATION
    ),
    (
        "cybergine.db.migrations.versions.0006_conversations_and_whatsapp",
        "cybergine.privacy.crypto",
    ): _FROZEN_MIGRATION,
    # FastAPI dependencies (authorize, public, CSRF) every route declares.
    ("cybergine.accounts.auth", "cybergine.web.access"): _HTTP_EDGE.format("accounts.auth"),
    ("cybergine.accounts.auth", "cybergine.web.deps"): _HTTP_EDGE.format("accounts.auth"),
    # Meta's webhook route.
    ("cybergine.channels.whatsapp.webhooks", "cybergine.web.access"): _HTTP_EDGE.format(
        "the WhatsApp webhook"
    ),
    ("cybergine.channels.whatsapp.webhooks", "cybergine.web.deps"): _HTTP_EDGE.format(
        "the WhatsApp webhook"
    ),
    ("cybergine.channels.whatsapp.webhooks", "cybergine.web.openapi"): _HTTP_EDGE.format(
        "the WhatsApp webhook"
    ),
    # The data-subject requests' routes, beside the customers' (privacy.api).
    ("cybergine.privacy.requests_api", "cybergine.web.deps"): _HTTP_EDGE.format(
        "privacy.requests_api"
    ),
    ("cybergine.privacy.requests_api", "cybergine.web.openapi"): _HTTP_EDGE.format(
        "privacy.requests_api"
    ),
    ("cybergine.channels.whatsapp.simulator.server", "cybergine.web.threaded"): (
        "the Graph API simulator is a development tool that serves HTTP from a thread, "
        "with the server helper the test servers use"
    ),
    ("cybergine.shopify.simulator.server", "cybergine.web.threaded"): (
        "the Shopify simulator is a development tool that serves HTTP from a thread, "
        "with the server helper the test servers use"
    ),
    ("cybergine.knowledge.imports", "cybergine.web.hygiene"): (
        "a bulk import checks each line with the edge's pure input checks (JSON depth, "
        "unstorable characters); they can move to a leaf module beside the middleware"
    ),
}


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported} (line {self.line})"


def module_name(path: Path, source_root: Path) -> str:
    parts = list(path.relative_to(source_root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run, wherever it is, skipping the bodies of
    ``if TYPE_CHECKING:``."""
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
        else:
            pending.extend(ast.iter_child_nodes(node))


def _targets(
    node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, modules: set[str]
) -> Iterator[str]:
    """The project modules one import statement loads."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = importer if is_package else importer.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        # ``from package import name`` loads the submodule when ``name`` is one.
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
            for alias in node.names
        ]
    for name in names:
        # The nearest enclosing project module (``import cybergine.x.y as z``).
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name:
            yield name


def import_graph(source_root: Path = SOURCE, package: str = ROOT) -> dict[str, list[Edge]]:
    """Every module of ``package`` under ``source_root``, with its run-time imports of
    modules of the same package."""
    paths = {
        module_name(path, source_root): path
        for path in sorted((source_root / package).rglob("*.py"))
    }
    modules = set(paths)
    graph: dict[str, list[Edge]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        edges = {
            Edge(name, target, node.lineno)
            for node in _runtime_imports(tree)
            for target in _targets(node, name, is_package, modules)
            if target != name
        }
        graph[name] = sorted(edges, key=lambda edge: (edge.imported, edge.line))
    return graph


def cycles(graph: Mapping[str, Iterable[Edge]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted:
    every module in one can reach every other, so each is at least one cycle."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    successors = {name: sorted({edge.imported for edge in edges}) for name, edges in graph.items()}

    def visit(start: str) -> None:
        # Iterative, so a deep graph does not hit the recursion limit.
        work: list[tuple[str, Iterator[str]]] = [(start, iter(successors.get(start, ())))]
        index[start] = lowlink[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = lowlink[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors.get(child, ()))))
                    break
                if child in on_stack:
                    lowlink[node] = min(lowlink[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    lowlink[parent] = min(lowlink[parent], lowlink[node])
                if lowlink[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))

    for name in sorted(successors):
        if name not in index:
            visit(name)
    return sorted(found)


def _part(module: str, depth: int) -> str:
    parts = module.split(".")
    return parts[depth] if len(parts) > depth else ""


def forbidden(edge: Edge) -> str | None:
    """The rule ``edge`` breaks, if any."""
    importer, imported = edge.importer, edge.imported
    source_layer, target_layer = _part(importer, 1), _part(imported, 1)
    if source_layer == "conversations" and target_layer == "channels":
        return "conversations imports a channel"
    if source_layer == "db" and target_layer in DOMAINS:
        return "db imports a domain"
    if imported.endswith(".tasks") and importer not in (JOBS_COMPOSITION_ROOT, imported):
        return "a task module is imported outside the job queue's composition root"
    if (
        source_layer in DOMAINS
        and target_layer in HTTP_LAYERS
        and importer.rpartition(".")[2] != "api"
    ):
        return f"a domain imports {target_layer} outside its api.py"
    return None


def violations(graph: Mapping[str, Iterable[Edge]]) -> dict[tuple[str, str], str]:
    """Every forbidden edge (importer, imported) with the rule it breaks."""
    return {
        (edge.importer, edge.imported): rule
        for edges in graph.values()
        for edge in edges
        if (rule := forbidden(edge)) is not None
    }


# --- the rules, on the code as it is


@functools.cache
def _project_graph() -> dict[str, list[Edge]]:
    return import_graph()


def test_the_import_graph_has_no_cycle() -> None:
    found = cycles(_project_graph())
    assert found == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_import_goes_the_wrong_way() -> None:
    found = violations(_project_graph())
    new = {edge: rule for edge, rule in found.items() if edge not in ALLOWED}
    assert new == {}, "forbidden imports:\n" + "\n".join(
        f"{importer} -> {imported}: {rule}" for (importer, imported), rule in sorted(new.items())
    )


def test_the_allow_list_only_names_what_is_still_there() -> None:
    found = violations(_project_graph())
    fixed = sorted(set(ALLOWED) - set(found))
    assert fixed == [], f"no longer imported, remove from ALLOWED: {fixed}"


# --- the checker itself catches what it should


def _package(root: Path, files: Mapping[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_checker_catches_a_bad_edge_and_a_hidden_cycle(tmp_path: Path) -> None:
    source = _package(
        tmp_path,
        {
            "cybergine/__init__.py": "",
            "cybergine/db/__init__.py": "",
            "cybergine/db/base.py": "from cybergine.privacy.retention import Retention\n",
            "cybergine/privacy/__init__.py": "",
            "cybergine/privacy/retention.py": "import enum\n",
            "cybergine/conversations/__init__.py": "",
            "cybergine/conversations/service.py": (
                "from typing import TYPE_CHECKING\n"
                "from cybergine import queue\n"
                "if TYPE_CHECKING:\n"
                "    from cybergine.web import clients\n"
                "async def later():\n"
                "    from cybergine.channels.whatsapp.tasks import send_message\n"
            ),
            "cybergine/conversations/api.py": "from cybergine.web.clients import origin_of\n",
            "cybergine/channels/__init__.py": "",
            "cybergine/channels/whatsapp/__init__.py": "",
            "cybergine/channels/whatsapp/tasks.py": "from ...conversations import service\n",
            "cybergine/web/__init__.py": "",
            "cybergine/web/clients.py": "",
            "cybergine/queue.py": "def defer():\n    import cybergine.conversations.service\n",
        },
    )
    graph = import_graph(source)

    assert violations(graph) == {
        ("cybergine.db.base", "cybergine.privacy.retention"): "db imports a domain",
        (
            "cybergine.conversations.service",
            "cybergine.channels.whatsapp.tasks",
        ): "conversations imports a channel",
    }
    # The relative import and the two imports inside functions close the cycles; the
    # import for the type checker and the one in api.py are no edges / allowed.
    assert cycles(graph) == [
        [
            "cybergine.channels.whatsapp.tasks",
            "cybergine.conversations.service",
            "cybergine.queue",
        ]
    ]


def test_the_checker_names_each_rule() -> None:
    def rule(importer: str, imported: str) -> str | None:
        return forbidden(Edge(importer, imported, 1))

    assert rule("cybergine.knowledge.service", "cybergine.knowledge.tasks") is not None
    assert rule("cybergine.jobs", "cybergine.knowledge.tasks") is None
    assert rule("cybergine.assistants.service", "cybergine.web.clients") is not None
    assert rule("cybergine.assistants.api", "cybergine.web.clients") is None
    assert rule("cybergine.conversations.pipeline", "cybergine.channels.adapters") is not None
    assert rule("cybergine.channels.whatsapp.ingest", "cybergine.conversations.service") is None
    assert rule("cybergine.db.models", "cybergine.mail.models") is not None
    assert rule("cybergine.mail.models", "cybergine.db.base") is None


MAX_MODULE_LINES = 600


def test_no_module_passes_600_lines() -> None:
    """CONTRIBUTING's rule: a module that grows past it is split along its seams; the
    tests' and the benches' modules too."""
    project = SOURCE.parent
    long = {
        str(path.relative_to(project)): lines
        for folder in (SOURCE, project / "tests", project / "bench")
        for path in folder.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
