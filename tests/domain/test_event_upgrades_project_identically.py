"""Events stored by the code before their v2 (v1 ``class_version``, no v2 fields) project into every view
exactly as the same history stored by the current code: the upcasters give the views what v2 gives them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent

from projections.readside import VIEWS, ReadSide
from projections.sql import Db
from tests.support import ADMIN, two_teams
from ticketflow.application import TicketDesk
from ticketflow.commands import AddNote, OpenTicket, PostReply, RegisterCustomer
from ticketflow.commands.access import IssueToken
from ticketflow.commands.workflow import SubscribeWebhook
from ticketflow.config import Settings
from ticketflow.domain.values import Role

#: The events that changed, and the fields their v2 added (what a v1 payload lacks).
V2_FIELDS = {
    "Ticket.Replied": ("template_id", "template_version"),
    "Ticket.NoteAdded": ("template_id", "template_version"),
    "ApiToken.Issued": ("agent_id", "permissions"),
    "Webhook.Subscribed": ("scopes",),
}


def _history(desk: TicketDesk) -> None:
    """A desk's history touching every changed event, each as a desk before v2 could have written it."""
    team_a, _ = two_teams(desk)
    customer = desk.register_customer(RegisterCustomer(name="王小明", email="xm@example.cn"), ADMIN).object_id
    ticket = desk.open_ticket(OpenTicket(subject="无法登录 [紧急]", requester_id=customer, team_id=team_a), ADMIN).object_id
    desk.handle(PostReply(ticket_id=ticket, body="您好，请重置密码"), ADMIN)
    desk.handle(AddNote(ticket_id=ticket, body="内部备注：已核实身份"), ADMIN)
    desk.issue_token(IssueToken(name="im-bridge", role=Role.INTEGRATION, team_ids=[team_a]), ADMIN)
    desk.subscribe_webhook(SubscribeWebhook(name="crm", url="https://93.184.215.14/hook", event_types=["*"]), ADMIN)


def _as_v1(desk: TicketDesk, stored: StoredEvent) -> tuple[StoredEvent, bool]:
    """The stored event as the code before v2 wrote it: no ``class_version`` (1), no v2 fields."""
    fields = V2_FIELDS.get(stored.topic.split(":")[-1])
    if fields is None:
        return stored, False
    state = desk.mapper.transcoder.decode(desk.writer_mac.unwrap(stored).state)
    assert state.pop("class_version") == 2, stored.topic
    for name in fields:
        state.pop(name)
    old = StoredEvent(stored.originator_id, stored.originator_version, stored.topic, desk.mapper.transcoder.encode(state))
    return desk.writer_mac.wrap(old), True


def _all_rows(table: str) -> Callable[[Db], list[dict[str, Any]]]:
    return lambda db: db.all(f"SELECT * FROM {{p}}{table}")


def _views(settings: Settings, events: list[StoredEvent]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of every view, once the views followed a log holding ``events``."""
    desk = TicketDesk(settings)
    desk.recorder.insert_events(events)
    read_side = ReadSide(desk, list(VIEWS))
    try:
        read_side.catch_up(list(VIEWS))
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for name, view in VIEWS.items():
            for table in view.tables:
                found = read_side.read(name, _all_rows(table.name))
                rows[f"{name}.{table.name}"] = sorted((tuple(sorted(r.items())) for r in found), key=repr)
        return rows
    finally:
        read_side.close()
        desk.close()


def test_events_stored_as_v1_project_into_every_view_as_the_same_history_stored_as_v2(tmp_path: Path) -> None:
    writer = TicketDesk(Settings(data_dir=tmp_path / "writer", encrypt_personal_data=False))
    _history(writer)
    current = [StoredEvent(n.originator_id, n.originator_version, n.topic, n.state)  # in log order
               for n in writer.recorder.select_notifications(1, 10**6)]
    downgraded = [_as_v1(writer, stored) for stored in current]
    writer.close()
    assert {stored.topic.split(":")[-1] for stored, was_v2 in downgraded if was_v2} == set(V2_FIELDS)  # every changed event is in the history, stored as v1

    as_v2 = _views(Settings(data_dir=tmp_path / "v2", encrypt_personal_data=False), current)
    as_v1 = _views(Settings(data_dir=tmp_path / "v1", encrypt_personal_data=False), [e for e, _ in downgraded])
    assert set(as_v1) == set(as_v2)
    assert sum(map(len, as_v2.values())) > 20  # the views hold the history (a comparison of nothing proves nothing)
    for table, rows in as_v2.items():
        assert as_v1[table] == rows, table
