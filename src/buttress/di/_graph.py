"""The dependency graph as data (nodes and edges, rendered as text or Mermaid) and validation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from buttress.di._errors import CycleError, ValidationError
from buttress.di._registry import Registration, Registry
from buttress.errors import ButtressError

if TYPE_CHECKING:
    from buttress.di._compile import Compiler


@dataclass(frozen=True, slots=True)
class Node:
    """One registration.

    Attributes:
        id: unique in the graph: the key's name, plus the provider for members of a group.
        key: the key's display name.
        provider: the provider's name (``instance`` for a ready instance).
        lifetime: ``singleton``, ``transient`` or ``scoped``.
        is_async: the provider must be awaited.
    """

    id: str
    key: str
    provider: str
    lifetime: str
    is_async: bool


@dataclass(frozen=True, slots=True)
class Edge:
    """``source`` needs ``target`` for its parameter ``param``."""

    source: str
    target: str
    param: str


@dataclass(frozen=True, slots=True)
class Graph:
    """The container's dependency graph; unresolvable dependencies have no edge (see ``validate``)."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def to_text(self) -> str:
        """One line per node with what it needs: ``UserRepo (singleton, UserRepo) -> Db``."""
        lines = []
        for node in self.nodes:
            needs = [e.target for e in self.edges if e.source == node.id]
            arrow = f" -> {', '.join(needs)}" if needs else ""
            lines.append(f"{node.id} ({node.lifetime}, {node.provider}){arrow}")
        return "\n".join(lines)

    def to_mermaid(self) -> str:
        """A Mermaid ``graph TD`` of the nodes and edges."""
        ids = {node.id: f"n{i}" for i, node in enumerate(self.nodes)}
        lines = ["graph TD"]
        lines += [f'    {ids[n.id]}["{n.id}<br/>{n.lifetime}"]' for n in self.nodes]
        lines += [f"    {ids[e.source]} -->|{e.param}| {ids[e.target]}" for e in self.edges]
        return "\n".join(lines)


def node_id(reg: Registration, registry: Registry) -> str:
    """The graph id of a registration."""
    return reg.name if len(registry.get(reg.key)) <= 1 else f"{reg.name}<{reg.label}>"


def direct_dependencies(reg: Registration, registry: Registry) -> list[tuple[str, Registration]]:
    """``(param, registration)`` for every registration ``reg`` may use; broken hints give none."""
    found: list[tuple[str, Registration]] = []
    try:
        deps = reg.deps
    except ButtressError:
        return found
    for dep in deps:
        found += [(dep.param, r) for r in registry.lookup(dep)[1]]
    return found


def build_graph(registry: Registry) -> Graph:
    """The graph of every registration, in registration order."""
    regs = registry.all()
    nodes = tuple(
        Node(node_id(r, registry), r.name, r.label, r.lifetime if r.kind != "instance" else "singleton",
             r.is_async)
        for r in regs
    )  # fmt: skip
    edges = tuple(
        Edge(node_id(r, registry), node_id(d, registry), param)
        for r in regs
        for param, d in direct_dependencies(r, registry)
    )
    return Graph(nodes, edges)


def validate(registry: Registry, compiler: Compiler) -> None:
    """Compile every registration as a root (async, inside a scope: the most permissive mode).

    Raises:
        ValidationError: listing every distinct problem.
    """
    from buttress.di._compile import _Gen

    problems: list[ButtressError] = []
    seen: set[str] = set()
    for reg in registry.all():
        gen = _Gen(compiler, is_async=True, in_scope=True, captor=None)
        try:
            gen.node(reg, (), ())
        except ButtressError as exc:
            # one cycle is found from each of its members: report it once
            signature = str(sorted(set(exc.path))) if isinstance(exc, CycleError) else str(exc)
            if signature not in seen:
                seen.add(signature)
                problems.append(exc)
    if problems:
        raise ValidationError(problems)
