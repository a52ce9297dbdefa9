"""Customer profile and team directory rules."""

from __future__ import annotations

import pytest

from ticketflow.commands import (
    AddCustomerNote, AddTeamMember, ChangeCustomerTier, ChangeTeamMember, DeactivateTeamMember, GiveConsent,
    ReactivateTeamMember, RegisterCustomer, RenameTeam, UpdateCustomerProfile, WithdrawConsent,
)
from ticketflow.domain.values import Consent, CustomerTier, MemberRole
from ticketflow.errors import PermissionDenied, RuleViolation
from tests.support import ADMIN, AGENT, Desk


def test_registering_keeps_every_profile_field(setup: Desk) -> None:
    result = setup.app.register_customer(
        RegisterCustomer(
            name="Olivia Chen", email="olivia@example.com", phone="+44 7700 900123", im_handle="wx_olivia",
            company="华信科技", job_title="采购主管", preferred_language="en-GB", tier=CustomerTier.VIP,
            consents=[Consent.SERVICE, Consent.SURVEYS],
        ),
        ADMIN,
    )
    customer = setup.app.get_customer(result.object_id)
    assert (customer.name, customer.email, customer.company, customer.tier) == (
        "Olivia Chen", "olivia@example.com", "华信科技", CustomerTier.VIP,
    )
    assert customer.consents == ["service", "surveys"]


def test_profile_updates_record_only_what_changed(setup: Desk) -> None:
    result = setup.app.update_customer_profile(
        UpdateCustomerProfile(customer_id=setup.customer_id, name="王小明", company="东方物流", phone=""), ADMIN
    )
    assert result.events == ("Customer.ProfileUpdated",)
    event = setup.app.history(setup.customer_id)[-1]
    assert event.payload() == {
        "changes": {"company": "东方物流", "phone": ""},
        "previous": {"company": None, "phone": "+86 13800000000"},
    }
    customer = setup.app.get_customer(setup.customer_id)
    assert (customer.company, customer.phone) == ("东方物流", None)


def test_a_profile_update_that_changes_nothing_is_refused(setup: Desk) -> None:
    before = setup.app.log_position()
    with pytest.raises(RuleViolation, match="already has these values"):
        setup.app.update_customer_profile(UpdateCustomerProfile(customer_id=setup.customer_id, name="王小明"), ADMIN)
    assert setup.app.log_position() == before


def test_language_tier_consent_and_notes_are_their_own_events(setup: Desk) -> None:
    cid = setup.customer_id
    setup.app.update_customer_profile(UpdateCustomerProfile(customer_id=cid, preferred_language="en-US"), ADMIN)
    setup.app.change_customer_tier(ChangeCustomerTier(customer_id=cid, tier=CustomerTier.VIP, reason="大客户"), AGENT)
    setup.app.give_consent(GiveConsent(customer_id=cid, purpose=Consent.MARKETING), ADMIN)
    setup.app.withdraw_consent(WithdrawConsent(customer_id=cid, purpose=Consent.SERVICE), ADMIN)
    setup.app.add_customer_note(AddCustomerNote(customer_id=cid, note="喜欢电话联系"), AGENT)
    names = [type(e).__qualname__ for e in setup.app.history(cid)]
    assert names[1:] == [
        "Customer.LanguageChanged", "Customer.TierChanged", "Customer.ConsentGiven",
        "Customer.ConsentWithdrawn", "Customer.NoteAdded",
    ]
    customer = setup.app.get_customer(cid)
    assert (customer.preferred_language, customer.tier, customer.consents) == ("en-US", CustomerTier.VIP, ["marketing"])
    with pytest.raises(RuleViolation):
        setup.app.withdraw_consent(WithdrawConsent(customer_id=cid, purpose=Consent.SERVICE), ADMIN)
    with pytest.raises(PermissionDenied):
        setup.app.change_customer_tier(
            ChangeCustomerTier(customer_id=cid, tier=CustomerTier.BASIC), setup.customer_caller
        )


def test_team_membership_can_go_out_of_and_back_into_rotation(setup: Desk) -> None:
    team_id = setup.team_id
    setup.app.deactivate_team_member(DeactivateTeamMember(team_id=team_id, agent_id="li.wei", reason="年假"), ADMIN)
    assert setup.app.get_team(team_id).active_members() == ["emma.clark"]
    with pytest.raises(RuleViolation, match="already inactive"):
        setup.app.deactivate_team_member(DeactivateTeamMember(team_id=team_id, agent_id="li.wei"), ADMIN)
    setup.app.reactivate_team_member(ReactivateTeamMember(team_id=team_id, agent_id="li.wei"), ADMIN)
    assert setup.app.get_team(team_id).active_members() == ["emma.clark", "li.wei"]


def test_team_members_have_roles_and_skills(setup: Desk) -> None:
    team_id = setup.team_id
    setup.app.change_team_member(
        ChangeTeamMember(team_id=team_id, agent_id="li.wei", role=MemberRole.LEAD, skills=["network", "中文"]), ADMIN
    )
    setup.app.rename_team(RenameTeam(team_id=team_id, name="技术支持二线"), ADMIN)
    team = setup.app.get_team(team_id)
    assert team.name == "技术支持二线"
    assert team.members["li.wei"] == {"role": "lead", "skills": ["network", "中文"], "active": True}
    with pytest.raises(RuleViolation, match="already a member"):
        setup.app.add_team_member(AddTeamMember(team_id=team_id, agent_id="li.wei"), ADMIN)
    with pytest.raises(RuleViolation, match="not a member"):
        setup.app.deactivate_team_member(DeactivateTeamMember(team_id=team_id, agent_id="ghost"), ADMIN)
