"""Running a limiter's scripts on Redis: one ``EVALSHA``, ``NOSCRIPT`` handled, nothing more.

A limiter that owns its connection pool (see :func:`~buttress.resilience.ratelimit.redis.bounded_client`)
talks to its connections directly: a free connection is popped from a list, sent the packed
command, read, and pushed back. redis-py's ``execute_command`` does much more per command
(a pool lock, a ``poll`` of the socket, metrics hooks, a retry wrapper), which on a loaded host
costs a fifth of a local round trip; a decision needs none of it. What the pool's checks are for
is kept: a reused connection that turns out closed (the server restarted, or dropped idle
clients) is retried once on a new connection, and the idle ones are dropped with it.

A client the limiter does not own (Redis Cluster, Sentinel, a custom pool) is used through its
``execute_command``, as given.

``list.pop`` and ``list.append`` are atomic, so the sync runner needs no lock; a forked child
forgets the parent's connections (they share sockets) without closing them.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from typing import Any

import redis
from redis.exceptions import NoScriptError

from buttress.resilience.ratelimit._redis_scripts import Script

__all__ = ["AsyncRunner", "SyncRunner"]

_runners: weakref.WeakSet[_Runner] = weakref.WeakSet()


def _forget_all() -> None:  # pragma: no cover - runs in a forked child
    for runner in list(_runners):
        runner._idle = []


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_forget_all)


class _Runner:
    """What both runners share: the client, its pool when owned, and the list of idle connections."""

    __slots__ = ("__weakref__", "_client", "_closed", "_idle", "_pool")

    def __init__(self, client: Any, owned: bool) -> None:
        self._client = client
        self._pool: Any = client.connection_pool if owned else None
        self._idle: list[Any] = []
        self._closed = False
        _runners.add(self)

    def _take(self) -> tuple[Any, bool]:
        """An idle connection and ``True``, or a new one (not yet connected) and ``False``."""
        try:
            return self._idle.pop(), True
        except IndexError:
            return self._new(), False

    def _new(self) -> Any:
        pool = self._pool
        return pool.connection_class(**pool.connection_kwargs)


class SyncRunner(_Runner):
    """Runs ``EVALSHA`` commands for one sync limiter."""

    __slots__ = ()

    def run(self, script: Script, command: tuple[Any, ...]) -> Any:
        """The reply to ``command`` (an ``EVALSHA`` of ``script``), loading it on ``NOSCRIPT``.

        Raises:
            redis.RedisError: a connection, timeout or server error (the limiter's fault policy
                decides what the caller sees).
        """
        if self._pool is None:
            return self._via_client(script, command)
        conn, reused = self._take()
        try:
            raw = _round_trip(conn, script, command)
        except redis.ConnectionError:
            conn.disconnect()
            if not reused:
                raise
            # a closed connection was waiting in the list: so may the others be
            self._drop_idle()
            conn = self._new()
            try:
                raw = _round_trip(conn, script, command)
            except BaseException:
                conn.disconnect()
                raise
        except BaseException:
            conn.disconnect()
            raise
        if self._closed:
            conn.disconnect()
        else:
            self._idle.append(conn)  # not `idle`: _drop_idle may have replaced the list
        return raw

    def _via_client(self, script: Script, command: tuple[Any, ...]) -> Any:
        client = self._client
        try:
            return client.execute_command(*command)
        except NoScriptError:
            client.script_load(script.source)
            return client.execute_command(*command)

    def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.disconnect()

    def close(self) -> None:
        """Close the connections this runner opened (a client not owned stays open)."""
        if self._pool is None:
            return
        self._closed = True
        self._drop_idle()
        self._pool.disconnect()


def _round_trip(conn: Any, script: Script, command: tuple[Any, ...]) -> Any:
    conn.send_command(*command, check_health=False)
    try:
        return conn.read_response()
    except NoScriptError:
        conn.send_command("SCRIPT", "LOAD", script.source, check_health=False)
        conn.read_response()
        conn.send_command(*command, check_health=False)
        return conn.read_response()


class AsyncRunner(_Runner):
    """Runs ``EVALSHA`` commands for one asyncio limiter.

    redis.asyncio connections belong to the event loop they connected on; when the limiter is
    awaited on another loop, the idle connections of the previous one are dropped.
    """

    __slots__ = ("_loop",)

    def __init__(self, client: Any, owned: bool) -> None:
        super().__init__(client, owned)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, script: Script, command: tuple[Any, ...]) -> Any:
        """The reply to ``command`` (an ``EVALSHA`` of ``script``), loading it on ``NOSCRIPT``.

        Raises:
            redis.RedisError: a connection, timeout or server error.
        """
        if self._pool is None:
            return await self._via_client(script, command)
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._idle = []  # the previous loop's connections cannot be used (nor closed) here
        conn, reused = self._take()
        # on any error redis.asyncio disconnects the connection itself (even when cancelled)
        try:
            raw = await _around_trip(conn, script, command)
        except redis.ConnectionError:
            if not reused:
                raise
            # a closed connection was waiting in the list: so may the others be
            await self._drop_idle()
            conn = self._new()
            raw = await _around_trip(conn, script, command)
        if self._closed or loop is not self._loop:
            await conn.disconnect()
        else:
            self._idle.append(conn)  # not `idle`: _drop_idle may have replaced the list
        return raw

    async def _via_client(self, script: Script, command: tuple[Any, ...]) -> Any:
        client = self._client
        try:
            return await client.execute_command(*command)
        except NoScriptError:
            await client.script_load(script.source)
        except redis.ConnectionError:
            pass  # a stale pooled connection (the server restarted): the client reconnects
        return await client.execute_command(*command)

    async def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect(nowait=True)

    async def aclose(self) -> None:
        """Close the connections this runner opened (a client not owned stays open)."""
        if self._pool is None:
            return
        self._closed = True
        await self._drop_idle()
        await self._pool.disconnect()


async def _around_trip(conn: Any, script: Script, command: tuple[Any, ...]) -> Any:
    await conn.send_command(*command, check_health=False)
    try:
        return await conn.read_response()
    except NoScriptError:
        await conn.send_command("SCRIPT", "LOAD", script.source, check_health=False)
        await conn.read_response()
        await conn.send_command(*command, check_health=False)
        return await conn.read_response()
