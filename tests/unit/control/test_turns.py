"""Turns at the API server's one-at-a-time Service creation: at most ``limit`` held, given
in the order asked, each waiting key woken once a turn is within its reach."""

from collections.abc import Hashable
from contextlib import ExitStack

import pytest

from modelloop.control.turns import Turns


def line(limit: int) -> tuple[Turns, list[Hashable]]:
    woken: list[Hashable] = []
    return Turns(limit, woken.append), woken


def test_keys_within_the_limit_take_a_turn_and_the_rest_wait() -> None:
    turns, woken = line(2)
    with ExitStack() as held:
        assert held.enter_context(turns.turn("a"))
        assert held.enter_context(turns.turn("b"))
        with turns.turn("c") as granted:
            assert not granted
        assert woken == []
        assert turns.waiting() == 1
    assert woken == ["c"]  # the first turn given back is within c's reach
    with turns.turn("c") as granted:
        assert granted
    assert turns.waiting() == 0


def test_a_free_turn_goes_to_the_first_in_line_not_to_a_newcomer() -> None:
    turns, woken = line(1)
    with turns.turn("a") as granted:
        assert granted
        with turns.turn("c") as granted:
            assert not granted
    assert woken == ["c"]
    with turns.turn("newcomer") as granted:
        assert not granted  # c was woken for this turn
    with turns.turn("c") as granted:
        assert granted
    assert woken == ["c", "newcomer"]


def test_a_key_asking_again_keeps_its_place() -> None:
    turns, woken = line(1)
    with turns.turn("a"):
        for key in ("b", "c", "b"):
            with turns.turn(key) as granted:
                assert not granted
            turns.passed(key)
    assert woken == ["b"]
    with turns.turn("c") as granted:
        assert not granted


def test_a_woken_key_that_does_not_ask_again_hands_its_place_on() -> None:
    turns, woken = line(1)
    with turns.turn("a"):
        for key in ("b", "c"):
            with turns.turn(key):
                pass
            turns.passed(key)
    assert woken == ["b"]
    turns.passed("b")  # its Service existed by then, or it was deleted: it never asked
    assert woken == ["b", "c"]
    with turns.turn("c") as granted:
        assert granted


def test_a_key_woken_twice_is_told_once_until_it_asks_again() -> None:
    turns, woken = line(2)
    with ExitStack() as held:
        held.enter_context(turns.turn("a"))
        held.enter_context(turns.turn("b"))
        with turns.turn("c"):
            pass
    assert woken == ["c"]  # both turns came free; c was told at the first


def test_a_turn_is_given_back_when_the_creation_fails() -> None:
    turns, _ = line(1)

    def create(key: Hashable) -> None:
        with turns.turn(key) as granted:
            assert granted
            raise RuntimeError("the API server did not answer")

    with pytest.raises(RuntimeError):
        create("a")
    with turns.turn("b") as granted:
        assert granted


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="limit 0"):
        Turns(0, lambda key: None)
