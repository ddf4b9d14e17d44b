"""Starting services in dependency layers and stopping them in reverse, each stop hook timed out.

A *service* is a singleton whose instance has ``start``/``stop`` methods (looked up on the
instance's own type, so an interface-typed registration still gets its implementation's hooks)
or that was registered with ``on_start=``/``on_stop=``. A service's *layer* is one more than the
deepest layer among the services it depends on, directly or through other registrations; layer 0
starts first. Only services that started are ever stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from buttress.di._graph import direct_dependencies
from buttress.di._registry import MISSING, Registration, Registry


@dataclass(frozen=True, slots=True)
class StopResult:
    """What happened when the started services were stopped.

    Attributes:
        stopped: the services whose stop hook returned, in the order they finished.
        failed: ``(service, exception)`` for each stop hook that raised.
        timed_out: the services whose stop hook overran its timeout (abandoned, not waited for).
    """

    stopped: tuple[str, ...] = ()
    failed: tuple[tuple[str, BaseException], ...] = ()
    timed_out: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Every stop hook returned in time."""
        return not self.failed and not self.timed_out


@dataclass(slots=True)
class Service:
    """A started (or about to start) service and its hooks."""

    reg: Registration
    instance: Any
    start: Callable[[], Any] | None
    stop: Callable[[], Any] | None
    layer: int = 0
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = self.reg.name


def _has_hooks(cls: object) -> bool:
    return isinstance(cls, type) and (
        callable(getattr(cls, "start", None)) or callable(getattr(cls, "stop", None))
    )


def candidates(registry: Registry) -> list[Registration]:
    """Singletons that are services (or eager), whether or not they were created yet."""
    found = []
    for reg in registry.all():
        if reg.lifetime != "singleton":
            continue
        cls = type(reg.value) if reg.value is not MISSING else reg.provider
        if reg.eager or reg.on_start or reg.on_stop or _has_hooks(cls) or _has_hooks(reg.key):
            found.append(reg)
    return found


def _bound(hook: Callable[[Any], Any] | None, instance: Any, method: str) -> Callable[[], Any] | None:
    if hook is not None:
        return lambda: hook(instance)
    found = getattr(type(instance), method, None)
    return getattr(instance, method) if callable(found) else None


def services(registry: Registry) -> list[Service]:
    """Every created singleton with a hook, with its layer, in start order."""
    found = {}
    for reg in registry.all():
        if reg.lifetime != "singleton" or reg.value is MISSING:
            continue
        start = _bound(reg.on_start, reg.value, "start")
        stop = _bound(reg.on_stop, reg.value, "stop")
        if start is not None or stop is not None:
            found[reg] = Service(reg, reg.value, start, stop)
    layers: dict[Registration, int] = {}

    def nearest(reg: Registration) -> set[Registration]:
        seen: set[Registration] = set()
        out: set[Registration] = set()
        todo = [d for _, d in direct_dependencies(reg, registry)]
        while todo:
            dep = todo.pop()
            if dep in seen:
                continue
            seen.add(dep)
            if dep in found:
                out.add(dep)
            else:
                todo += [d for _, d in direct_dependencies(dep, registry)]
        return out

    def layer(reg: Registration, path: frozenset[Registration]) -> int:
        if reg not in layers:
            below = [layer(d, path | {reg}) for d in nearest(reg) if d not in path]
            layers[reg] = 1 + max(below) if below else 0
        return layers[reg]

    for reg, service in found.items():
        service.layer = layer(reg, frozenset())
    return sorted(found.values(), key=lambda s: (s.layer, s.reg.index))


def by_layer(items: Iterable[Service]) -> list[list[Service]]:
    """Services grouped by layer, lowest first."""
    groups: dict[int, list[Service]] = {}
    for s in items:
        groups.setdefault(s.layer, []).append(s)
    return [groups[k] for k in sorted(groups)]


async def _await(value: Any) -> Any:
    return await value


def call_sync(hook: Callable[[], Any]) -> None:
    """Call a hook from sync code; an async hook runs on a fresh event loop."""
    result = hook()
    if inspect.isawaitable(result):
        asyncio.run(_await(result))


async def call_async(hook: Callable[[], Any]) -> None:
    """Call a hook from async code, awaiting it if it is async."""
    result = hook()
    if inspect.isawaitable(result):
        await result


def _in_daemon_thread(name: str, hook: Callable[[], Any]) -> Future[None]:
    # a daemon thread, not an executor: a hung hook must not hold up interpreter or loop exit
    future: Future[None] = Future()

    def run() -> None:
        try:
            call_sync(hook)
        except BaseException as exc:
            outcome: tuple[BaseException | None] = (exc,)
        else:
            outcome = (None,)
        # the waiter gave up (timed out, cancelled): nobody is left to tell
        with contextlib.suppress(InvalidStateError):
            if outcome[0] is None:
                future.set_result(None)
            else:
                future.set_exception(outcome[0])

    threading.Thread(target=run, name=f"buttress-stop-{name}", daemon=True).start()
    return future


class _Outcome:
    __slots__ = ("failed", "stopped", "timed_out")

    def __init__(self) -> None:
        self.stopped: list[str] = []
        self.failed: list[tuple[str, BaseException]] = []
        self.timed_out: list[str] = []

    def result(self) -> StopResult:
        return StopResult(tuple(self.stopped), tuple(self.failed), tuple(self.timed_out))


def stop_sync(started: list[Service], hook_timeout: float) -> StopResult:
    """Stop ``started`` newest first, each hook in a daemon thread given ``hook_timeout`` seconds."""
    outcome = _Outcome()
    for service in reversed(started):
        if service.stop is None:
            continue
        try:
            _in_daemon_thread(service.name, service.stop).result(hook_timeout)
        except FutureTimeout:
            outcome.timed_out.append(service.name)
        except Exception as exc:
            outcome.failed.append((service.name, exc))
        else:
            outcome.stopped.append(service.name)
    return outcome.result()


async def _stop_one(service: Service, hook_timeout: float, outcome: _Outcome) -> None:
    assert service.stop is not None
    if inspect.iscoroutinefunction(service.stop) or inspect.iscoroutinefunction(service.reg.on_stop):
        waiter: asyncio.Future[Any] = asyncio.ensure_future(call_async(service.stop))
    else:
        waiter = asyncio.wrap_future(_in_daemon_thread(service.name, service.stop))
    done, _ = await asyncio.wait({waiter}, timeout=hook_timeout)
    if not done:
        waiter.cancel()
        outcome.timed_out.append(service.name)
    elif waiter.exception() is not None:
        outcome.failed.append((service.name, waiter.exception()))  # type: ignore[arg-type]
    else:
        outcome.stopped.append(service.name)


async def stop_async(started: list[Service], hook_timeout: float) -> StopResult:
    """Stop ``started`` layer by layer, newest layer first, in parallel within a layer."""
    outcome = _Outcome()
    for layer in reversed(by_layer(started)):
        hooks = [_stop_one(s, hook_timeout, outcome) for s in reversed(layer) if s.stop is not None]
        await asyncio.gather(*hooks)
    return outcome.result()
