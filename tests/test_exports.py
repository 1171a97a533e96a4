"""The public namespace: every name in ``__all__`` exists, once, and nothing is private."""

from __future__ import annotations

import importlib

import pytest

PUBLIC_MODULES = [
    "chatcore",
    "chatcore.errors",
    "chatcore.model",
    "chatcore.events",
    "chatcore.ids",
    "chatcore.protocol",
    "chatcore.log",
    "chatcore.store",
    "chatcore.presence",
    "chatcore.registry",
    "chatcore.bus",
    "chatcore.cache",
    "chatcore.offline",
    "chatcore.media",
    "chatcore.media.s3",
    "chatcore.push",
    "chatcore.uploads",
    "chatcore.uploads.redis",
    "chatcore.fanout",
    "chatcore.receipts",
    "chatcore.backends",
    "chatcore.node",
    "chatcore.pipeline",
    "chatcore.client",
    "chatcore.store.cassandra",
    "chatcore.gateway",
    "chatcore.server",
    "chatcore.testing",
    "chatcore.plan",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_names_exist_and_are_unique(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), f"{name}.__all__ repeats a name"
    for attr in exported:
        assert not attr.startswith("_"), f"{name} exports private {attr}"
        assert hasattr(module, attr), f"{name}.__all__ names missing {attr}"


def test_every_error_is_a_chatcore_error() -> None:
    import chatcore.errors as errors

    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, errors.ChatcoreError), name
            assert obj.code, name


def test_a_public_name_means_one_thing() -> None:
    """The same name exported from two modules is the same object (re-exports only)."""
    seen: dict[str, tuple[str, object]] = {}
    clashes = []
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            first = seen.setdefault(attr, (name, obj))
            if first[1] is not obj:
                clashes.append(f"{attr}: {first[0]} and {name}")
    assert not clashes, "one name, two things:\n" + "\n".join(clashes)
