"""Dependency injection: a container that compiles each dependency graph into one function.

See ``docs/di.md`` for the guide. Everything public is re-exported here.
"""

from buttress.di._container import Container, Override
from buttress.di._errors import (
    AmbiguousError,
    AsyncProviderError,
    CaptiveDependencyError,
    CycleError,
    FinalizerError,
    NotFoundError,
    RegistrationError,
    ResolutionError,
    ScopeError,
    StartError,
    ValidationError,
)
from buttress.di._graph import Edge, Graph, Node
from buttress.di._keys import Named
from buttress.di._lifecycle import StopResult
from buttress.di._registry import Lifetime
from buttress.di._scope import Scope

__all__ = [
    "AmbiguousError",
    "AsyncProviderError",
    "CaptiveDependencyError",
    "Container",
    "CycleError",
    "Edge",
    "FinalizerError",
    "Graph",
    "Lifetime",
    "Named",
    "Node",
    "NotFoundError",
    "Override",
    "RegistrationError",
    "ResolutionError",
    "Scope",
    "ScopeError",
    "StartError",
    "StopResult",
    "ValidationError",
]
