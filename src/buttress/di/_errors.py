"""The errors of the dependency-injection container; every one is a :class:`ButtressError`."""

from __future__ import annotations

from collections.abc import Sequence

from buttress.errors import ButtressError


def _chain_text(chain: Sequence[str]) -> str:
    # the chain is stored root first; the message reads from the nearest consumer outwards
    return f" (needed by {' <- '.join(reversed(chain))})" if chain else ""


class ResolutionError(ButtressError):
    """A dependency could not be resolved.

    Attributes:
        key: the display name of the dependency that failed, e.g. ``"Db"`` or ``"Db[name='replica']"``.
        chain: the consumers that needed it, root first (``("UserService", "UserRepo")``).
    """

    key: str
    chain: tuple[str, ...]

    def __init__(self, message: str, *, key: str, chain: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.key = key
        self.chain = tuple(chain)


class NotFoundError(ResolutionError, LookupError):
    """Nothing is registered for a required dependency.

    The message reads ``not found: Db (needed by UserRepo <- UserService)``.
    """

    def __init__(self, key: str, chain: Sequence[str] = ()) -> None:
        super().__init__(f"not found: {key}{_chain_text(chain)}", key=key, chain=chain)


class AmbiguousError(ResolutionError):
    """One instance was asked for but several providers are registered (a group).

    Attributes:
        candidates: the display names of the registered providers, in registration order.
    """

    candidates: tuple[str, ...]

    def __init__(self, key: str, candidates: Sequence[str], chain: Sequence[str] = ()) -> None:
        self.candidates = tuple(candidates)
        names = ", ".join(self.candidates)
        super().__init__(
            f"ambiguous: {len(self.candidates)} providers for {key} ({names}){_chain_text(chain)}; "
            f"inject list[{key}] or call resolve_all({key})",
            key=key,
            chain=chain,
        )


class CycleError(ResolutionError):
    """The dependency graph has a cycle; ``path`` lists it, ending where it started (``A -> B -> A``)."""

    path: tuple[str, ...]

    def __init__(self, path: Sequence[str]) -> None:
        self.path = tuple(path)
        super().__init__(
            f"dependency cycle: {' -> '.join(self.path)}", key=self.path[0], chain=self.path[:-1]
        )


class ScopeError(ResolutionError):
    """A scoped dependency was resolved where no scope is active (from the container itself)."""

    def __init__(self, key: str, chain: Sequence[str] = ()) -> None:
        super().__init__(
            f"{key} is scoped and cannot be resolved outside a scope{_chain_text(chain)}; "
            "use `with container.scope() as scope: scope.resolve(...)`",
            key=key,
            chain=chain,
        )


class CaptiveDependencyError(ResolutionError):
    """A singleton depends (directly or through transients) on a scoped dependency, which it would capture."""

    def __init__(self, key: str, chain: Sequence[str]) -> None:
        path = " -> ".join([*chain, key])
        super().__init__(
            f"captive dependency: singleton {chain[0]} would capture scoped {key} ({path})",
            key=key,
            chain=chain,
        )


class AsyncProviderError(ResolutionError):
    """A synchronous resolve reached an async (coroutine or async-generator) provider."""

    def __init__(self, key: str, chain: Sequence[str] = ()) -> None:
        super().__init__(
            f"{key} has an async provider and cannot be resolved synchronously{_chain_text(chain)}; "
            "use `await container.aresolve(...)`",
            key=key,
            chain=chain,
        )


class RegistrationError(ButtressError, TypeError):
    """A registration cannot work: a parameter without a type hint, a bad lifetime, a hint that fails."""


class ValidationError(ButtressError):
    """:meth:`Container.validate` found problems; ``problems`` holds every one of them.

    Attributes:
        problems: the errors found, one per broken registration.
    """

    problems: tuple[ButtressError, ...]

    def __init__(self, problems: Sequence[ButtressError]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"the container is invalid ({len(self.problems)} problem(s)):\n{lines}")


class StartError(ButtressError):
    """A service failed to start; the services already started were stopped again, in reverse.

    Attributes:
        service: the display name of the service whose start hook failed.
        cause: the exception its hook raised (also ``__cause__``).
        stop_result: the outcome of the rollback.
    """

    service: str
    cause: BaseException
    stop_result: object

    def __init__(self, service: str, cause: BaseException, stop_result: object) -> None:
        super().__init__(f"service {service} failed to start: {type(cause).__name__}: {cause}")
        self.service = service
        self.cause = cause
        self.stop_result = stop_result


class FinalizerError(ButtressError):
    """One or more finalizers (the code after ``yield`` in a generator provider) raised.

    Every other finalizer still ran. ``errors`` pairs each failing provider's name with its exception.
    """

    errors: tuple[tuple[str, BaseException], ...]

    def __init__(self, errors: Sequence[tuple[str, BaseException]]) -> None:
        self.errors = tuple(errors)
        text = "; ".join(f"{name}: {type(exc).__name__}: {exc}" for name, exc in self.errors)
        super().__init__(f"{len(self.errors)} finalizer(s) failed: {text}")
