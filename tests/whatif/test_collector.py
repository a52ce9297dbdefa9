"""A what-if collects garbage less often while it holds the log read, and gives the collector back as it was."""

from __future__ import annotations

import gc

import pytest

from ticketflow.whatif.replay import BULK_GC_THRESHOLD, fewer_collections


def test_a_whatif_raises_the_collectors_first_threshold_and_restores_it() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        inside = gc.get_threshold()
    assert inside == (max(before[0], BULK_GC_THRESHOLD), *before[1:])
    assert gc.get_threshold() == before


def test_a_failed_whatif_restores_the_collectors_threshold_too() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("the replay failed")
    assert gc.get_threshold() == before


def test_a_threshold_changed_meanwhile_is_left_as_it_was_set() -> None:
    before = gc.get_threshold()
    try:
        with fewer_collections():
            gc.set_threshold(123, *before[1:])
        assert gc.get_threshold()[0] == 123
    finally:
        gc.set_threshold(*before)
