"""The garbage-collector settings chatcore's own processes run with."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from chatcore._gc import THRESHOLDS, freeze_startup_objects, tune_gc
from chatcore.server import ServerSettings
from chatcore.server.run import build_server


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@pytest.mark.usefixtures("restored_gc")
def test_build_server_tunes_the_collector_unless_told_not_to() -> None:
    gc.set_threshold(700, 10, 10)
    build_server(ServerSettings(data_dir=None, dev=True), gc_tuning=False)
    assert gc.get_threshold() == (700, 10, 10)
    server = build_server(ServerSettings(data_dir=None, dev=True))
    assert gc.get_threshold() == THRESHOLDS
    assert server.gc_tuning


@pytest.mark.usefixtures("restored_gc")
def test_freezing_moves_what_is_alive_out_of_the_collector() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    tune_gc()
    freeze_startup_objects()
    assert gc.get_freeze_count() > 1000  # modules, classes, the test session
