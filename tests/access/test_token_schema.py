"""ApiToken.Issued v2 (agent_id, permissions): tokens stored before it still load."""

from __future__ import annotations

from pathlib import Path

from eventsourcing.persistence import StoredEvent

from tests.support import ADMIN
from ticketflow.application import TicketDesk
from ticketflow.commands import AddTeamMember, FormTeam
from ticketflow.commands.access import IssueToken
from ticketflow.config import Settings
from ticketflow.domain.values import Role


def _as_v1(desk: TicketDesk, token: str) -> StoredEvent:
    """The token's Issued event as a v1 writer stored it: no agent_id, no permissions, no class_version."""
    principal = desk.authenticate(token)
    assert principal is not None
    (stored,) = desk.recorder.select_events(principal.token_id, limit=1)
    assert desk.mapper.compressor is None and desk.mapper.cipher is None
    state = desk.mapper.transcoder.decode(desk.writer_mac.unwrap(stored).state)
    assert state.pop("class_version") == 2
    del state["agent_id"], state["permissions"]
    return desk.writer_mac.wrap(
        StoredEvent(stored.originator_id, stored.originator_version, stored.topic, desk.mapper.transcoder.encode(state)))


def test_tokens_issued_before_v2_still_load_and_unbound_agent_tokens_are_refused(tmp_path: Path) -> None:
    writer = TicketDesk(Settings(data_dir=tmp_path / "v2"))
    team = writer.form_team(FormTeam(name="技术支持"), ADMIN).object_id
    writer.add_team_member(AddTeamMember(team_id=team, agent_id="li.wei"), ADMIN)
    _, admin_token = writer.issue_token(IssueToken(name="ops", role=Role.ADMIN), ADMIN)
    _, agent_token = writer.issue_token(IssueToken(role=Role.AGENT, agent_id="li.wei"), ADMIN)
    assert admin_token and agent_token
    old = [_as_v1(writer, admin_token), _as_v1(writer, agent_token)]
    writer.close()

    reader = TicketDesk(Settings(data_dir=tmp_path / "v1"))
    reader.recorder.insert_events(old)
    principal = reader.authenticate(admin_token)
    assert principal is not None and (principal.name, principal.role, principal.agent_id) == ("ops", Role.ADMIN, None)
    issued = reader.history(principal.token_id)[0]
    assert (issued.agent_id, issued.permissions) == (None, None)  # type: ignore[attr-defined]
    # an agent token from before tokens were bound to a person names no one: reissue it
    assert reader.authenticate(agent_token) is None
    reader.close()
