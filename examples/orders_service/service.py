"""The orders service: an HTTP intake, a queue, a pool of workers, an event bus and a ledger.

- ``http`` module: a tiny HTTP/1.0 server (``GET /ready``, ``POST /orders/<id>``) owning the
  ``http`` config section and the ``--http-host`` / ``--http-port`` flags.
- ``orders`` module: the queue, a pool of supervised workers that process orders and publish
  ``OrderProcessed`` on the event bus, the ledger that records them, and a database service
  (a container service with ``start``/``stop``). It owns the ``orders`` section and ``--workers``.

Shutdown, phase by phase: the HTTP server stops listening and the queue refuses new orders
(``stop_accepting``); queued and in-flight orders finish (``drain``); the workers stop and
the bus delivers what they published (``stop_workers``); the ledger is flushed
(``flush_telemetry``); the database closes (``close_clients``). ``orders.hang_on_stop``
makes the ledger flush hang, to show the blame log and the global timeout at work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, Field, SecretStr

from buttress.app import App, ConfigOptions, Flag, Module, Phase, Setup
from buttress.eventbus import EventBus
from buttress.worker import StopSignal

log = logging.getLogger("orders")


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class OrdersSettings(BaseModel):
    seed: int = Field(default=0, ge=0, description="orders queued at start-up")
    work_seconds: float = Field(default=0.2, ge=0)
    workers: int = Field(default=2, ge=1, le=64)
    hang_on_stop: bool = False
    payment_api_key: SecretStr = SecretStr("change-me")


@dataclass(frozen=True, slots=True)
class OrderProcessed:
    order_id: int
    worker: str


class OrderQueue:
    """Orders waiting for a worker; refuses new ones once the intake is closed."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self.accepting = True

    def submit(self, order_id: int) -> bool:
        if not self.accepting:
            return False
        self._queue.put_nowait(order_id)
        return True

    def close_intake(self) -> None:
        self.accepting = False
        log.info("intake closed; %d orders still queued", self._queue.qsize())

    async def next(self, stop: StopSignal) -> int | None:
        """The next order, or ``None`` once the worker is asked to stop."""
        get = asyncio.ensure_future(self._queue.get())
        halt = asyncio.ensure_future(stop.wait_async())
        await asyncio.wait({get, halt}, return_when=asyncio.FIRST_COMPLETED)
        halt.cancel()
        if get.done():
            return get.result()
        get.cancel()
        return None

    def done(self) -> None:
        self._queue.task_done()

    async def drain(self) -> None:
        """Wait until every queued and in-flight order is processed."""
        await self._queue.join()
        log.info("drained: no order in flight")


class Database:
    """Stands for a connection pool: a container service, started first and closed last."""

    async def start(self) -> None:
        log.info("database connected")

    async def stop(self) -> None:
        log.info("database closed")


class Ledger:
    """Records processed orders; subscribed to the event bus."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.recorded: list[int] = []

    def record(self, event: OrderProcessed) -> None:
        self.recorded.append(event.order_id)


class HttpApi:
    """``GET /ready`` (200 when the App is ready, else 503) and ``POST /orders/<id>``."""

    def __init__(self, settings: HttpSettings, queue: OrderQueue, ready: Callable[[], bool]) -> None:
        self.settings = settings
        self.queue = queue
        self.ready = ready
        self.server: asyncio.Server | None = None

    async def listen(self) -> None:
        self.server = await asyncio.start_server(self._handle, self.settings.host, self.settings.port)
        host, port = self.server.sockets[0].getsockname()[:2]
        log.info("listening on http://%s:%d", host, port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            log.info("http server closed")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = (await reader.readline()).decode("latin-1").split()
        method, path = [*request, "", ""][:2]
        if method == "GET" and path == "/ready":
            status, body = ("200 OK", "ready") if self.ready() else ("503 Service Unavailable", "not ready")
        elif method == "POST" and path.startswith("/orders/") and path[8:].isdigit():
            accepted = self.queue.submit(int(path[8:]))
            status, body = ("202 Accepted", "queued") if accepted else ("503 Service Unavailable", "closed")
        else:
            status, body = "404 Not Found", "not found"
        writer.write(f"HTTP/1.0 {status}\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
        await writer.drain()
        writer.close()


class HttpModule(Module):
    name = "http"
    sections: Mapping[str, type[BaseModel]] = {"http": HttpSettings}
    flags = (
        Flag("--http-host", "http.host", help="Interface to listen on."),
        Flag("--http-port", "http.port", type=int, help="Port to listen on (0: any free port)."),
    )

    def setup(self, ctx: Setup) -> None:
        ctx.container.register(HttpSettings, instance=ctx.section("http", HttpSettings))
        app = ctx.app

        def make_api(settings: HttpSettings, queue: OrderQueue) -> HttpApi:  # OrderQueue: orders module
            return HttpApi(settings, queue, lambda: app.ready)

        ctx.container.register(HttpApi, make_api)
        container = ctx.container

        # setup only registers; the hooks resolve when they run, after the graph was validated
        async def listen() -> None:
            await container.resolve(HttpApi).listen()

        async def close_listener() -> None:
            await container.resolve(HttpApi).close()

        ctx.on_start(listen)
        ctx.on_shutdown(Phase.STOP_ACCEPTING, close_listener)


class OrdersModule(Module):
    name = "orders"
    sections: Mapping[str, type[BaseModel]] = {"orders": OrdersSettings}
    flags = (Flag("--workers", "orders.workers", type=int, help="Order workers to run."),)

    def setup(self, ctx: Setup) -> None:
        settings = ctx.section("orders", OrdersSettings)
        container = ctx.container
        container.register(OrderQueue)
        container.register(Database)
        container.register(Ledger, eager=True)
        container.register(EventBus, instance=EventBus("orders"))

        async def process_orders(stop: StopSignal) -> None:
            queue, bus = container.resolve(OrderQueue), container.resolve(EventBus)
            while (order_id := await queue.next(stop)) is not None:
                try:
                    log.info("order %d processing on %s", order_id, stop.worker)
                    await ctx.clock.asleep(settings.work_seconds)  # stands for real work
                    await bus.publish(OrderProcessed(order_id, stop.worker))
                    log.info("order %d processed", order_id)
                finally:
                    queue.done()

        def seed() -> None:
            container.resolve(EventBus).subscribe(OrderProcessed, container.resolve(Ledger).record)
            queue = container.resolve(OrderQueue)
            for order_id in range(1, settings.seed + 1):
                queue.submit(order_id)
            log.info("seeded %d orders", settings.seed)

        def close_intake() -> None:
            container.resolve(OrderQueue).close_intake()

        async def drain() -> None:
            await container.resolve(OrderQueue).drain()

        async def close_bus() -> None:
            report = await container.resolve(EventBus).close(1.0)
            log.info("event bus closed: %s", report)

        def flush_ledger() -> None:  # a sync hook: it runs in a daemon thread
            if settings.hang_on_stop:
                time.sleep(3600)  # the failure this flag simulates: a flush that never returns
            log.info("ledger flushed: %d orders recorded", len(container.resolve(Ledger).recorded))

        ctx.add_worker(process_orders, pool=settings.workers)
        ctx.on_start(seed)
        ctx.on_shutdown(Phase.STOP_ACCEPTING, close_intake)
        ctx.on_shutdown(Phase.DRAIN, drain)
        ctx.on_shutdown(Phase.STOP_WORKERS, close_bus)
        ctx.on_shutdown(Phase.FLUSH_TELEMETRY, flush_ledger)


def build_app(config: ConfigOptions | None = None) -> App:
    """The orders service; environment variables start with ``ORDERS_`` (``ORDERS_HTTP__PORT``)."""
    return App("orders", modules=[HttpModule(), OrdersModule()], config=config)
