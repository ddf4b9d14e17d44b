"""Compose policies into one, outermost first."""

from __future__ import annotations

from buttress.resilience._policy import AsyncLink, Policy, SyncLink

__all__ = ["Pipeline"]


class Pipeline(Policy):
    """Several policies applied as one, the first one outermost.

    ``Pipeline(timeout, retry, breaker)`` behaves like ``timeout(retry(breaker(fn)))``: the
    timeout bounds all attempts, each retry passes through the breaker. The chain of closures
    is built once, here; a call walks it without looking at a list. A pipeline is itself a
    policy (decorator, ``call``, ``acall``) and may be nested in another.

    The recommended order, outermost first: fallback > timeout (total) > retry > circuit
    breaker > bulkhead > timeout (per attempt).

    Args:
        *policies: at least one policy, outermost first.
        name: identifies the pipeline in errors and events.

    Raises:
        TypeError: when an argument is not a policy.
        ValueError: when no policy is given.

    Example:
        >>> from buttress.resilience import CircuitBreaker, Retry
        >>> from buttress.resilience.backoff import Zero
        >>> pipeline = Pipeline(Retry(attempts=3, backoff=Zero()), CircuitBreaker())
        >>> pipeline.call(lambda: "ok")
        'ok'
    """

    __slots__ = ("policies",)

    def __init__(self, *policies: Policy, name: str | None = None) -> None:
        super().__init__(name)
        if not policies:
            raise ValueError("Pipeline needs at least one policy (got none)")
        for index, policy in enumerate(policies):
            if not isinstance(policy, Policy):
                raise TypeError(f"Pipeline argument {index} must be a buttress policy (got {policy!r})")
        self.policies: tuple[Policy, ...] = policies
        self._compose()

    def _chain_sync(self, nxt: SyncLink) -> SyncLink:
        for policy in reversed(self.policies):
            nxt = policy._chain_sync(nxt)
        return nxt

    def _chain_async(self, nxt: AsyncLink) -> AsyncLink:
        for policy in reversed(self.policies):
            nxt = policy._chain_async(nxt)
        return nxt

    def _requires_async(self) -> bool:
        return any(policy._requires_async() for policy in self.policies)

    def __repr__(self) -> str:
        inner = ", ".join(repr(p) for p in self.policies)
        return f"Pipeline({inner})"
