"""A look the replay skips (same SLA terms and clocks as at a look that decided nothing, before anything
falls due) would have decided nothing and set the same next look: checked by running each skipped look."""

from __future__ import annotations

import pytest
from hypothesis import given

from tests.whatif.desks import Program, Sla, programs, sla_policy
from tests.whatif.test_identity import EXAMPLES, FIXED, PERIOD, live_desk
from ticketflow.whatif import replay as replay_module
from ticketflow.whatif import run_whatif, to_json


@EXAMPLES
@given(programs())
def test_every_skipped_look_would_have_decided_nothing(program: Program) -> None:
    with live_desk(program) as world, pytest.MonkeyPatch.context() as patch:
        calendar = world.calendar_id if program.sla.business_hours else None
        billing = world.teams["账务"] if program.sla.escalate_to_billing else None
        stricter = Sla(
            {k: max(1, v // 2) for k, v in program.sla.minutes.items()},
            program.sla.business_hours,
            program.sla.warn_at_percent,
            program.sla.raise_priority,
            program.sla.escalate_to_billing,
        )
        candidate = {"sla_policies": [sla_policy(stricter, calendar, billing)]}
        skipped = to_json(run_whatif(world.desk, PERIOD, candidate, processes=1))
        patch.setattr(replay_module, "_CHECK_SKIPS", True)  # each skipped look is run and must decide nothing
        checked = to_json(run_whatif(world.desk, PERIOD, candidate, processes=1))
        assert checked == skipped


def test_looks_are_skipped_and_each_skipped_one_is_checked() -> None:
    """The check above is not vacuous: on this desk looks are skipped, and every one of them is run again."""
    with live_desk(FIXED) as world, pytest.MonkeyPatch.context() as patch:
        checked: list[object] = []
        real = replay_module.Scenario._check_skip

        def counting(self, replayed, terms, now):  # type: ignore[no-untyped-def]
            checked.append(replayed)
            real(self, replayed, terms, now)

        patch.setattr(replay_module, "_CHECK_SKIPS", True)
        patch.setattr(replay_module.Scenario, "_check_skip", counting)
        run_whatif(world.desk, PERIOD, {}, processes=1)
        assert len(checked) > 0
