"""The outbox delivers each notification at least once, signed, retried with backoff; duplicates carry one id."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from uuid import UUID

import pytest

from projections.outbox import delivery_id
from projections.webhook_sender import MAX_ATTEMPTS, LEASE, backoff, http_post, sign, verify
from ticketflow.commands import GiveConsent, SolveTicket
from ticketflow.commands.workflow import ChangeWebhook, IssueSurvey, PauseWebhook, ResumeWebhook
from ticketflow.domain.values import Consent
from tests.outbox.conftest import Outbox
from tests.support import ADMIN, AGENT


class ProcessDied(BaseException):
    """Not an Exception: nothing in the sender catches it, as nothing survives a killed process."""


def test_a_notification_is_delivered_once_with_a_valid_signature(outbox: Outbox) -> None:
    hook = outbox.subscribe("Ticket.Opened")
    ticket_id = outbox.setup.open()

    assert outbox.send() == 1
    assert outbox.send() == 0  # delivered: never sent again

    [received] = outbox.receiver.received
    assert received.signature_ok and received.event_type == "Ticket.Opened" and received.attempt == 1
    event = received.body["event"]
    assert event["object_id"] == str(ticket_id) and event["event_type"] == "Ticket.Opened"
    position = event["position"]
    assert received.delivery_id == str(delivery_id(hook, position)) == received.body["delivery_id"]
    [row] = outbox.deliveries(hook)
    assert (row["state"], row["attempts"], row["last_status"], row["last_error"]) == ("delivered", 1, 200, None)


def test_a_signature_fails_for_another_secret_a_changed_body_or_an_old_timestamp() -> None:
    header = sign("s3cret", 1_770_000_000, b'{"a":1}')
    assert verify("s3cret", header, b'{"a":1}', now=1_770_000_010)
    assert not verify("other", header, b'{"a":1}', now=1_770_000_010)
    assert not verify("s3cret", header, b'{"a":2}', now=1_770_000_010)
    assert not verify("s3cret", header, b'{"a":1}', now=1_770_000_000 + 3600)
    assert not verify("s3cret", "garbage", b'{"a":1}', now=1_770_000_000)


def test_a_receiver_down_then_up_gets_every_notification_after_backoff(outbox: Outbox) -> None:
    hook = outbox.subscribe("Ticket.Opened")
    outbox.receiver.stop()  # connection refused
    tickets = [outbox.setup.open(f"问题 {i}") for i in range(3)]

    assert outbox.send() == 1  # one refused connection: the webhook's other deliveries wait for the next run
    rows = outbox.deliveries(hook)
    assert [r["attempts"] for r in rows] == [1, 0, 0]
    assert rows[0]["state"] == "pending" and "ConnectionRefused" in rows[0]["last_error"]
    assert outbox.send() == 1  # the second: refused too (the first is not due for 10 s)

    outbox.receiver.start()
    assert outbox.send() == 1  # the third was never tried: sent at once
    first, second = sorted(backoff(1, r["delivery_id"]) for r in outbox.deliveries(hook) if r["state"] == "pending")
    outbox.clock.advance(first - timedelta(seconds=1))
    assert outbox.send() == 0  # the refused ones wait out their backoff (10 s, less its jitter)...
    outbox.clock.advance(second - first + timedelta(seconds=1))
    assert outbox.send() == 2  # ...and go
    assert [r["attempts"] for r in outbox.deliveries(hook)] == [2, 2, 1]

    assert {r["state"] for r in outbox.deliveries(hook)} == {"delivered"}
    opened = {r.body["event"]["object_id"] for r in outbox.receiver.received}
    assert opened == {str(t) for t in tickets}
    assert all(r.signature_ok for r in outbox.receiver.received)


def test_a_receiver_answering_500_is_retried_with_doubling_backoff_and_each_attempt_recorded(outbox: Outbox) -> None:
    hook = outbox.subscribe("Ticket.Opened")
    outbox.setup.open()
    outbox.receiver.status = 500
    waits = []
    for attempt in range(1, 4):
        assert outbox.send() == 1
        waits.append(backoff(attempt))
        outbox.clock.advance(backoff(attempt))
    outbox.receiver.status = 204
    assert outbox.send() == 1

    assert waits == [timedelta(seconds=10), timedelta(seconds=20), timedelta(seconds=40)]
    assert [r.attempt for r in outbox.receiver.received] == [1, 2, 3, 4]
    assert len({r.delivery_id for r in outbox.receiver.received}) == 1
    [row] = outbox.deliveries(hook)
    from projections.outbox import get_delivery

    detail = outbox.read_side.read("outbox", lambda db: get_delivery(db, str(hook), row["delivery_id"]))
    assert detail is not None
    assert [(a["attempt"], a["status"], a["error"]) for a in detail["attempt_log"]] == [
        (1, 500, "HTTP 500"), (2, 500, "HTTP 500"), (3, 500, "HTTP 500"), (4, 204, None),
    ]


def test_a_delivery_fails_after_the_last_attempt_until_an_operator_retries_it(outbox: Outbox) -> None:
    from projections.outbox import requeue

    hook = outbox.subscribe("Ticket.Opened")
    outbox.setup.open()
    outbox.receiver.status = 503
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert outbox.send() == 1
        outbox.clock.advance(backoff(attempt))
    assert backoff(MAX_ATTEMPTS) == timedelta(hours=1)
    [row] = outbox.deliveries(hook)
    assert (row["state"], row["attempts"]) == ("failed", MAX_ATTEMPTS)
    assert outbox.send() == 0

    outbox.receiver.status = 200
    assert outbox.read_side.stores["outbox"].write(lambda db: requeue(db, str(hook), row["delivery_id"])) == "failed"
    assert outbox.send() == 1
    [row] = outbox.deliveries(hook)
    assert (row["state"], row["attempts"]) == ("delivered", MAX_ATTEMPTS + 1)


def test_a_crash_between_send_and_record_resends_the_same_delivery_id(outbox: Outbox) -> None:
    hook = outbox.subscribe("Ticket.Opened")
    tickets = [outbox.setup.open(f"问题 {i}") for i in range(3)]
    outbox.read_side.catch_up()

    def post_then_die(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        http_post(url, body, headers)  # the receiver has it...
        raise ProcessDied  # ...but the sender dies before recording that it was delivered

    with pytest.raises(ProcessDied):
        outbox.sender(post_then_die).run_once()
    assert len(outbox.receiver.received) == 1
    assert outbox.send() == 2  # a new sender: the claimed one waits for its lease to run out
    outbox.clock.advance(LEASE)
    assert outbox.send() == 1  # ...then it is sent again

    received = [r.delivery_id for r in outbox.receiver.received]
    assert len(received) == 4 and received.count(received[0]) == 2  # the duplicate shows by its id
    unique = outbox.receiver.unique()
    assert {r.body["event"]["object_id"] for r in unique.values()} == {str(t) for t in tickets}
    assert {r["state"] for r in outbox.deliveries(hook)} == {"delivered"}


def test_a_paused_webhook_gets_nothing_and_after_resuming_only_new_events(outbox: Outbox) -> None:
    hook = outbox.subscribe("Ticket.Opened")
    outbox.desk.pause_webhook(PauseWebhook(webhook_id=hook, reason="maintenance"), ADMIN)
    outbox.setup.open("暂停期间")
    assert outbox.send() == 0
    assert outbox.deliveries(hook) == []

    outbox.desk.resume_webhook(ResumeWebhook(webhook_id=hook), ADMIN)
    after = outbox.setup.open("恢复之后")
    assert outbox.send() == 1
    assert [r.body["event"]["object_id"] for r in outbox.receiver.received] == [str(after)]


def test_a_webhook_gets_only_the_event_types_it_subscribed_to(outbox: Outbox) -> None:
    opened = outbox.subscribe("Ticket.Opened")
    solved = outbox.subscribe("Ticket.Solved")
    everything = outbox.subscribe("*")
    ticket_id = outbox.setup.open()
    outbox.desk.solve_ticket(SolveTicket(ticket_id=ticket_id, resolution="重启了"), AGENT)
    outbox.send()

    def types(hook: UUID) -> list[str]:
        return [str(r["event_type"]) for r in outbox.deliveries(hook)]

    assert types(opened) == ["Ticket.Opened"]
    assert types(solved) == ["Ticket.Solved"]
    assert types(everything) == ["Ticket.Opened", "Ticket.Solved"]
    outbox.desk.change_webhook(ChangeWebhook(webhook_id=opened, url=outbox.receiver.url, event_types=["Ticket.Reopened"]), ADMIN)
    outbox.setup.open("另一个")
    assert types(opened) == ["Ticket.Opened"]


def test_personal_fields_are_masked_in_payloads(outbox: Outbox) -> None:
    outbox.subscribe("Ticket.Opened", "Ticket.Solved")
    ticket_id = outbox.setup.open("无法登录账户")
    outbox.desk.solve_ticket(SolveTicket(ticket_id=ticket_id, resolution="重置了密码"), AGENT)
    outbox.send()
    opened, solved = (r.body["event"]["payload"] for r in outbox.receiver.received)
    assert opened["subject"] == "***" and solved["resolution"] == "***"
    text = str([r.body for r in outbox.receiver.received])
    assert "无法登录账户" not in text and "重置了密码" not in text and "xiaoming" not in text


def test_a_survey_delivery_carries_its_link_token_which_is_never_stored(outbox: Outbox) -> None:
    hook = outbox.subscribe("Ticket.SurveyIssued")
    setup = outbox.setup
    outbox.desk.give_consent(GiveConsent(customer_id=setup.customer_id, purpose=Consent.SURVEYS), setup.customer_caller)
    ticket_id = setup.open()
    outbox.desk.solve_ticket(SolveTicket(ticket_id=ticket_id), AGENT)
    _, token = outbox.desk.issue_survey(IssueSurvey(ticket_id=ticket_id), ADMIN)
    assert outbox.send() == 1
    [received] = outbox.receiver.received
    assert received.body["event"]["payload"]["survey_token"] == token
    from projections.outbox import get_delivery

    [row] = outbox.deliveries(hook)
    stored = outbox.read_side.read("outbox", lambda db: get_delivery(db, str(hook), str(row["delivery_id"])))
    assert token is not None and token not in str(stored)


def test_a_rebuild_of_the_outbox_re_sends_nothing(outbox: Outbox) -> None:
    hook = outbox.subscribe("Ticket.Opened")
    outbox.setup.open()
    outbox.setup.open("第二个")
    assert outbox.send() == 2
    before = outbox.deliveries(hook)

    outbox.read_side.rebuild("outbox")
    assert outbox.send() == 0
    assert outbox.deliveries(hook) == before
    outbox.setup.open("第三个")
    assert outbox.send() == 1  # and the rebuilt subscriptions keep delivering new events


def test_imported_history_is_not_notified(outbox: Outbox) -> None:
    from ticketflow.commands import OpenTicket
    from ticketflow.domain.values import Channel, Role
    from ticketflow.metadata import Caller

    hook = outbox.subscribe("*")
    importer = Caller("legacy.agent", Role.AGENT, Channel.IMPORT)
    opened = OpenTicket(subject="历史工单", requester_id=outbox.setup.customer_id, team_id=outbox.setup.team_id,
                        occurred_at=outbox.clock.now() - timedelta(days=30))
    outbox.desk.open_ticket(opened, importer)
    assert outbox.deliveries(hook) == []
    outbox.setup.open("新工单")
    assert [r["event_type"] for r in outbox.deliveries(hook)] == ["Ticket.Opened"]


def test_retry_waits_are_jittered_within_half_of_the_backoff_and_the_same_for_a_delivery_and_attempt() -> None:
    ids = [f"delivery-{i}" for i in range(50)]
    for attempt in (1, 4, MAX_ATTEMPTS):
        full = backoff(attempt)
        waits = [backoff(attempt, delivery) for delivery in ids]
        assert all(full / 2 <= wait <= full for wait in waits)
        assert waits == [backoff(attempt, delivery) for delivery in ids]  # deterministic
        assert len(set(waits)) > 40  # spread: receivers coming back are not hit all at once


def test_every_delivery_is_also_signed_by_the_standard_webhooks_scheme(outbox: Outbox) -> None:
    from datetime import UTC, datetime

    from standardwebhooks import Webhook

    from projections.webhook_sender import standard_secret

    hook = outbox.subscribe("Ticket.Opened")
    outbox.setup.open("打印机坏了 [URGENT]")
    assert outbox.send() == 1
    [received] = outbox.receiver.received
    headers = {k.lower(): v for k, v in received.headers.items()}
    assert headers["webhook-id"] == received.delivery_id
    verifier = Webhook(standard_secret(outbox.desk.webhook_secret(hook)))  # the library's own HMAC, not ours
    at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
    assert headers["webhook-signature"] == verifier.sign(headers["webhook-id"], at, received.raw.decode())
    wrong = Webhook(standard_secret("not the secret"))
    assert headers["webhook-signature"] != wrong.sign(headers["webhook-id"], at, received.raw.decode())


def test_a_removed_webhook_gets_nothing_more_even_before_the_outbox_view_sees_the_removal(outbox: Outbox) -> None:
    from ticketflow.commands.workflow import RemoveWebhook

    hook = outbox.subscribe("Ticket.Opened")
    outbox.setup.open("已送达")
    assert outbox.send() == 1
    outbox.setup.open("待发送 1")
    outbox.setup.open("待发送 2")
    outbox.read_side.catch_up()  # both enqueued, pending
    outbox.desk.remove_webhook(RemoveWebhook(webhook_id=hook, reason="CRM retired"), ADMIN)

    assert outbox.sender().run_once() == 0  # the view has not seen the removal: the sender asks the log
    assert len(outbox.receiver.received) == 1
    assert [r["state"] for r in outbox.deliveries(hook)] == ["delivered", "dropped", "dropped"]
    outbox.setup.open("移除之后")
    assert outbox.send() == 0
    assert len(outbox.deliveries(hook)) == 3  # nothing enqueued after the removal
    assert outbox.desk.webhooks() == []
    from projections.outbox import get_subscription

    assert outbox.read_side.read("outbox", lambda db: get_subscription(db, str(hook))) is None


def test_deliveries_pending_when_the_view_applies_a_removal_are_dropped_and_a_rebuild_is_equal(outbox: Outbox) -> None:
    from ticketflow.commands.workflow import RemoveWebhook
    from ticketflow.errors import NotFound
    from tests.projections.support import dump

    kept = outbox.subscribe("*")
    removed = outbox.subscribe("Ticket.Opened")
    outbox.setup.open("第一")
    outbox.desk.remove_webhook(RemoveWebhook(webhook_id=removed), ADMIN)
    outbox.setup.open("第二")
    outbox.read_side.catch_up()  # enqueue and removal in one view batch
    assert [r["state"] for r in outbox.deliveries(removed)] == ["dropped"]
    assert outbox.send() == 2  # only the kept webhook's two
    assert {r["state"] for r in outbox.deliveries(kept)} == {"delivered"}
    with pytest.raises(NotFound):
        outbox.desk.remove_webhook(RemoveWebhook(webhook_id=removed), ADMIN)
    with pytest.raises(NotFound):
        outbox.desk.pause_webhook(PauseWebhook(webhook_id=removed), ADMIN)

    before = dump(outbox.read_side, "outbox")
    outbox.read_side.rebuild("outbox")
    assert dump(outbox.read_side, "outbox") == before
    assert outbox.send() == 0


def _access_records(outbox: Outbox) -> list[object]:
    from ticketflow.domain import DataAccess

    notifications = outbox.desk.recorder.select_notifications(1, 10_000)
    events = [outbox.desk.mapper.to_domain_event(n) for n in notifications]
    return [e for e in events if isinstance(e, DataAccess.Recorded)]


def test_a_webhook_granted_ticket_text_gets_it_unmasked_and_each_delivery_is_recorded(outbox: Outbox) -> None:
    from ticketflow.commands.workflow import SubscribeWebhook

    result, _ = outbox.desk.subscribe_webhook(SubscribeWebhook(
        name="CRM sync", url=outbox.receiver.url, event_types=["Ticket.Opened", "Ticket.Solved"], scopes=["tickets:text"],
    ), ADMIN)
    masked = outbox.subscribe("Ticket.Opened")
    ticket_id = outbox.setup.open("无法登录账户")
    outbox.desk.solve_ticket(SolveTicket(ticket_id=ticket_id, resolution="重置了密码"), AGENT)
    assert outbox.send() == 3

    by_hook: dict[str, list[dict[str, object]]] = {}
    for received in outbox.receiver.received:
        assert received.signature_ok
        by_hook.setdefault(received.body["webhook_id"], []).append(received.body["event"]["payload"])
    opened, solved = by_hook[str(result.object_id)]
    assert opened["subject"] == "无法登录账户" and solved["resolution"] == "重置了密码"
    [plain] = by_hook[str(masked)]
    assert plain["subject"] == "***" and {**plain, "subject": opened["subject"]} == opened
    stored = str(outbox.read_side.read("outbox", lambda db: db.all("SELECT payload FROM {p}tf_webhook_deliveries")))
    assert "无法登录账户" not in stored  # the outbox keeps payloads masked: the text is read from the log at send time

    records = _access_records(outbox)
    assert len(records) == 2
    assert {r.actor_id for r in records} == {f"webhook:{result.object_id}"}  # type: ignore[attr-defined]
    assert {r.customer_id for r in records} == {outbox.setup.customer_id}  # type: ignore[attr-defined]
    assert sorted(tuple(r.fields) for r in records) == [("resolution",), ("subject",)]  # type: ignore[attr-defined]


def test_a_webhook_subscribed_before_scopes_existed_loads_with_none(outbox: Outbox, tmp_path: object) -> None:
    from pathlib import Path

    from eventsourcing.persistence import StoredEvent

    from ticketflow.application import TicketDesk
    from ticketflow.config import Settings

    hook = outbox.subscribe("Ticket.Opened")
    (stored,) = outbox.desk.recorder.select_events(hook, limit=1)
    desk = outbox.desk
    state = desk.mapper.transcoder.decode(desk.writer_mac.unwrap(stored).state)
    assert state.pop("class_version") == 2
    del state["scopes"]
    old = desk.writer_mac.wrap(
        StoredEvent(stored.originator_id, stored.originator_version, stored.topic, desk.mapper.transcoder.encode(state)))
    reader = TicketDesk(Settings(data_dir=Path(str(tmp_path)) / "v1"))
    try:
        reader.recorder.insert_events([old])
        [loaded] = reader.webhooks()
        assert (loaded.id, loaded.scopes, reader.webhook_scopes(hook)) == (hook, [], [])
    finally:
        reader.close()
