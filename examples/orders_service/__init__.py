"""An example service built on buttress: App + DI + config + CLI + workers + the event bus.

Run it from the repository root (needs the ``app`` extra: pydantic and click)::

    python -m examples.orders_service --help
    python -m examples.orders_service run --http-port 8080
    ORDERS_ORDERS__SEED=20 python -m examples.orders_service          # run is the default
    python -m examples.orders_service config show --http-port 9000
    python -m examples.orders_service config check

See ``docs/app.md``.
"""

from examples.orders_service.service import build_app

__all__ = ["build_app"]
