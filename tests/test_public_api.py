"""The public surface: what each package exports, and that importing buttress stays light."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = [
    "buttress",
    "buttress.app",
    "buttress.cli",
    "buttress.config",
    "buttress.di",
    "buttress.eventbus",
    "buttress.resilience",
    "buttress.resilience.breaker",
    "buttress.resilience.ratelimit",
    "buttress.telemetry",
    "buttress.testing",
    "buttress.worker",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_resolvable(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), n)) or exported == sorted(exported)
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but missing"


def test_import_buttress_loads_no_third_party_library() -> None:
    third_party = ("redis", "httpx", "opentelemetry", "prometheus_client", "pydantic", "click")
    code = f"import sys, buttress; print(','.join(m for m in {third_party!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_errors_hierarchy() -> None:
    import builtins

    import buttress
    from buttress import errors

    for cls in (errors.OpenCircuitError, errors.BulkheadFullError, errors.TimeoutError, errors.RetryError,
                errors.RateLimitedError, errors.ConfigurationError):  # fmt: skip
        assert issubclass(cls, buttress.ButtressError)
    assert issubclass(errors.TimeoutError, builtins.TimeoutError)
    assert issubclass(errors.ConfigurationError, ValueError)
    err = errors.TimeoutError("too slow", policy="db", timeout=1.5)
    assert (err.policy, err.timeout, str(err)) == ("db", 1.5, "too slow")
