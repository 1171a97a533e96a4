from __future__ import annotations

from types import ModuleType

import pytest

import chatcore.ids
import chatcore.ids.memory


@pytest.mark.parametrize("module", [chatcore.ids, chatcore.ids.memory])
def test_all_names_exist_once_and_are_public(module: ModuleType) -> None:
    names = module.__all__
    assert len(names) == len(set(names))
    for name in names:
        assert not name.startswith("_")
        assert getattr(module, name) is not None


def test_public_objects_are_defined_in_the_package() -> None:
    for name in chatcore.ids.__all__:
        obj = getattr(chatcore.ids, name)
        if isinstance(obj, type) or callable(obj):
            assert obj.__module__.startswith("chatcore.ids"), name
