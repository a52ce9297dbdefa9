"""Search finds tickets by Chinese (no spaces), English and mixed text, on every store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from projections.readside import ReadSide
from projections.search import search
from projections.text import index_terms, parse_query
from ticketflow.commands import AddNote, OpenTicket, PostReply
from tests.support import AGENT, Desk


@pytest.fixture
def desk_with_tickets(any_setup: Desk) -> Iterator[tuple[Desk, ReadSide, dict[str, str]]]:
    subjects = {
        "login": "无法登录账户，提示密码错误",
        "printer": "Printer on floor 3 keeps jamming",
        "invoice": "发票金额与合同不符 invoice mismatch",
        "network": "网络连接经常中断",
    }
    ids = {}
    for key, subject in subjects.items():
        ids[key] = str(any_setup.app.open_ticket(
            OpenTicket(subject=subject, requester_id=any_setup.customer_id), any_setup.customer_caller
        ).object_id)
    any_setup.app.post_reply(PostReply(ticket_id=ids["network"], body="已为您重启路由器，请再试一次。"), AGENT)
    any_setup.app.add_note(AddNote(ticket_id=ids["printer"], body="vendor ticket 8841 opened 供应商"), AGENT)
    read_side = ReadSide(any_setup.app, ["search"])
    read_side.catch_up()
    yield any_setup, read_side, ids
    read_side.close()


def found(read_side: ReadSide, text: str, **kwargs: bool) -> set[str]:
    return {hit["ticket_id"] for hit in read_side.read("search", lambda db: search(db, text, **kwargs))}


def test_a_two_character_chinese_query_finds_its_tickets(desk_with_tickets: tuple[Desk, ReadSide, dict[str, str]]) -> None:
    _, read_side, ids = desk_with_tickets
    assert found(read_side, "登录") == {ids["login"]}
    assert found(read_side, "密码") == {ids["login"]}
    assert found(read_side, "合同") == {ids["invoice"]}


def test_longer_chinese_phrases_single_characters_and_bodies_match(
    desk_with_tickets: tuple[Desk, ReadSide, dict[str, str]],
) -> None:
    _, read_side, ids = desk_with_tickets
    assert found(read_side, "提示密码错误") == {ids["login"]}
    assert found(read_side, "路由器") == {ids["network"]}  # found in a reply body
    assert found(read_side, "断") == {ids["network"]}  # the last character of a run
    assert found(read_side, "登密") == set()  # not adjacent: no match


def test_english_is_case_insensitive_and_all_terms_must_match(
    desk_with_tickets: tuple[Desk, ReadSide, dict[str, str]],
) -> None:
    _, read_side, ids = desk_with_tickets
    assert found(read_side, "PRINTER jamming") == {ids["printer"]}
    assert found(read_side, "printer invoice") == set()
    assert found(read_side, "invoice 合同") == {ids["invoice"]}  # mixed scripts


def test_internal_notes_can_be_left_out(desk_with_tickets: tuple[Desk, ReadSide, dict[str, str]]) -> None:
    _, read_side, ids = desk_with_tickets
    assert found(read_side, "供应商") == {ids["printer"]}
    assert found(read_side, "供应商", include_internal=False) == set()


def test_hits_carry_a_snippet_and_empty_queries_find_nothing(
    desk_with_tickets: tuple[Desk, ReadSide, dict[str, str]],
) -> None:
    _, read_side, _ = desk_with_tickets
    (hit,) = read_side.read("search", lambda db: search(db, "登录"))
    assert "登录" in hit["snippet"] and hit["kind"] == "subject"
    assert found(read_side, "  ，。!? ") == set()


def test_terms_are_bigrams_for_cjk_and_words_otherwise() -> None:
    assert index_terms("无法登录 Login") == "无法 法登 登录 录 login"
    assert parse_query("登录").fts5() == '"登录"'
    assert parse_query("录 a").tsquery() == "('a') & '录':*"
