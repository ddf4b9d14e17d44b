"""The public surface of buttress.eventbus: a sorted __all__ re-exported from private modules."""

from __future__ import annotations

import buttress.eventbus as eventbus


def test_all_is_sorted_resolvable_and_re_exported() -> None:
    assert list(eventbus.__all__) == sorted(eventbus.__all__)
    for name in eventbus.__all__:
        obj = getattr(eventbus, name)
        module = getattr(obj, "__module__", "buttress.eventbus._")
        assert module.startswith("buttress.eventbus._") or name in ("BackpressurePolicy", "Handler")


def test_the_surface_is_exactly_this() -> None:
    assert set(eventbus.__all__) == {
        "BackpressurePolicy", "BusClosedError", "CloseReport", "EventBus", "Handler", "PublishResult",
        "SubscriberStats", "Subscription",
    }  # fmt: skip
