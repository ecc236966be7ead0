"""The routing rules on the fixed test directory, without HTTP: who is proposed and what happens."""

from __future__ import annotations

import itertools

import pytest

from fhir_server.second_opinion.directory import directory_from_resources
from fhir_server.second_opinion.routing import RoutingDecision, RoutingRequest, route

HN, BSP = "health-net-commercial", "blue-shield-promise-cmc"
CARDIOLOGY, MED_ONC, HEM_ONC, FAMILY, RHEUM, NEUROSURGERY = (
    "207RC0000X", "207RX0202X", "207RH0003X", "207Q00000X", "207RR0500X", "207T00000X")


def practitioners(*numbers: int) -> frozenset[str]:
    return frozenset(f"Practitioner/pract-{n:02d}" for n in numbers)


@pytest.fixture
def decide(catalog, directory_resources):
    def run(plan: str, specialty: str, group: str, *, involved=(), chosen: int | None = None,
            reasons=("questions-surgery",), third=False, complete=True, requested_by="provider",
            extra=()) -> RoutingDecision:
        request = RoutingRequest(
            specialty=specialty,
            reasons=tuple(reasons),
            member_group=f"Organization/{group}",
            involved=practitioners(*involved),
            chosen=f"Practitioner/pract-{chosen:02d}" if chosen else None,
            third_opinion=third,
            complete=complete,
            requested_by=requested_by,
        )
        directory = directory_from_resources([*directory_resources, *extra], plan)
        return route(request, catalog.plans[plan], catalog.specialties, directory)
    return run


def proposed(decision: RoutingDecision) -> str | None:
    return decision.provider.practitioner.rpartition("-")[2] if decision.provider else None


def test_group_first_never_the_treating_physician(decide):
    """90.2.17 6b / Health Net "within the PPG network": the member's group first, the treating one excluded."""
    decision = decide(HN, CARDIOLOGY, "ppg-valley", involved=[4])
    assert (proposed(decision), decision.tier, decision.outcome) == ("05", "group", "certify")


def test_inactive_role_is_never_proposed(decide):
    """pract-25 is retired (role inactive): with 04 and 05 involved the network's pract-10 is proposed."""
    decision = decide(HN, CARDIOLOGY, "ppg-valley", involved=[4, 5])
    assert (proposed(decision), decision.tier) == ("10", "network")


def test_health_net_does_not_require_board_certification(decide):
    """Health Net asks for an "appropriately qualified" professional; pract-10 (not certified) qualifies."""
    assert proposed(decide(HN, CARDIOLOGY, "ppg-coastal")) == "10"


def test_90_2_17_6b_board_certified_same_specialty_never_pract_14(decide):
    """90.2.17 procedure 6b "a Board Certified Physician of the same specialty": pract-14 never qualifies."""
    assert proposed(decide(BSP, CARDIOLOGY, "ipa-harbor")) == "15"
    with_panel = decide(BSP, CARDIOLOGY, "ipa-harbor", involved=[15])
    assert (proposed(with_panel), with_panel.tier) == ("19", "network")
    for involved, chosen in itertools.product(([], [15], [15, 19]), (None, 14)):
        assert proposed(decide(BSP, CARDIOLOGY, "ipa-harbor", involved=involved, chosen=chosen)) != "14"


def test_90_2_17_6b_out_of_network_when_the_plan_has_no_one(decide):
    """90.2.17 procedure 6b: "If the specialty is not available within Blue Shield Promise, the member will be
    referred out of network" — pract-15 and pract-19 involved: a certified cardiologist outside BSP."""
    decision = decide(BSP, CARDIOLOGY, "ipa-harbor", involved=[15, 19])
    assert decision.tier == "out-of-network" and proposed(decision) in ("04", "05")
    assert decision.outcome == "physician-review"


def test_expert_panel_is_preferred_in_the_plan_network(decide):
    """90.2.17 expert panel: medical oncology for an IPA without one goes to the panel's pract-20."""
    decision = decide(BSP, MED_ONC, "ipa-sunrise")
    assert (proposed(decision), decision.tier) == ("20", "network")


def test_equivalent_specialty_only_where_the_plan_accepts_it(decide):
    """Health Net "same or equivalent specialty" -> pract-08 (Hematology & Oncology); 90.2.17 "same
    specialty" -> never pract-08, the out-of-network medical oncologist pract-24 once pract-20 is involved."""
    assert proposed(decide(HN, MED_ONC, "ppg-valley")) == "08"
    bsp = decide(BSP, MED_ONC, "ipa-harbor", involved=[20])
    assert (proposed(bsp), bsp.tier) == ("24", "out-of-network")


def test_primary_care_another_pcp_of_the_same_group(decide):
    """90.2.17 procedure 6a: "an appropriately qualified primary care physician within the same physician
    organization"; never the member's own PCP; the same primary-care specialty first."""
    assert proposed(decide(HN, FAMILY, "ppg-valley", involved=[1])) == "02"
    assert proposed(decide(HN, FAMILY, "ppg-valley", involved=[1, 2])) == "03"  # Internal Medicine PCP
    assert proposed(decide(BSP, FAMILY, "ipa-harbor", involved=[12])) == "13"  # Internal Medicine, same IPA
    network = decide(BSP, FAMILY, "ipa-harbor", involved=[12, 13])
    assert (proposed(network), network.tier) == ("17", "network")  # then the plan's network (rule 4)


def test_health_net_member_choice_is_honoured_when_qualified_and_in_network(decide):
    """Health Net: second opinions "requested by a member or the member's physician" are given by a professional
    "of the member's choice ... from Health Net's network": honoured whoever asked, outside the PPG too."""
    for requested_by in ("member", "provider"):
        decision = decide(HN, CARDIOLOGY, "ppg-valley", involved=[4], chosen=10, requested_by=requested_by)
        assert (proposed(decision), decision.tier, decision.outcome) == ("10", "network", "certify"), requested_by


def test_90_2_17_6a_the_enrollee_designates_a_primary_care_physician_from_the_same_network(decide):
    """90.2.17 procedure 6a: "If the enrollee is making the request, he or she may designate one of their choice
    from the same network" — pract-17 (Sunrise IPA, same plan network) is honoured for the member's request."""
    decision = decide(BSP, FAMILY, "ipa-harbor", chosen=17, requested_by="member")
    assert (proposed(decision), decision.tier, decision.situation) == ("17", "network", "complete-qualifying")


def test_90_2_17_6a_a_physicians_primary_care_request_stays_within_the_physician_organization(decide):
    """90.2.17 procedure 6a: "an appropriately qualified primary care physician within the same physician
    organization shall provide the second opinion"; only the enrollee designates: a performer named on a
    physician's request does not move the opinion out of the member's IPA (pract-12, not pract-17)."""
    decision = decide(BSP, FAMILY, "ipa-harbor", chosen=17, requested_by="provider")
    assert (proposed(decision), decision.tier, decision.situation) == ("12", "group", "complete-qualifying")


def test_90_2_17_6b_specialty_care_follows_the_policy_order_not_a_designation(decide):
    """90.2.17 procedure 6b: specialty care goes to "a Board Certified Physician of the same specialty" of the
    PPG, then a Blue Shield Promise contracted specialist, then out of network; the designation of 6a is for
    primary care only: a member naming the panel's pract-19 still gets the IPA's pract-15 proposed."""
    decision = decide(BSP, CARDIOLOGY, "ipa-harbor", chosen=19, requested_by="member")
    assert (proposed(decision), decision.tier, decision.situation) == ("15", "group", "complete-qualifying")


def test_90_2_17_6a_out_of_network_designation_while_one_exists_in_network_goes_to_the_physician(decide):
    """90.2.17 procedure 6a "from the same network": an enrollee designating an out-of-network PCP while an
    in-network one exists is a case for the physician reviewer, who is proposed the in-network PCP."""
    outside = {"resourceType": "PractitionerRole", "id": "role-99", "active": True,
               "practitioner": {"reference": "Practitioner/pract-99"},
               "specialty": [{"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": FAMILY}]}]}
    decision = decide(BSP, FAMILY, "ipa-harbor", chosen=99, requested_by="member", extra=[outside])
    assert (decision.situation, decision.outcome, proposed(decision)) == (
        "member-choice-out-of-network", "physician-review", "12")


def test_health_net_out_of_network_choice_while_in_network_exists(decide):
    """Health Net Out-of-Network Requests: "If the member refuses to see an in-network provider and is requesting
    an out-of-network provider ... directed to the Health Net Member Services Department"; never A3."""
    hn = decide(HN, NEUROSURGERY, "ppg-coastal", chosen=22, requested_by="member")
    assert (hn.situation, hn.outcome, proposed(hn)) == ("member-choice-out-of-network", "member-services", "09")


def test_member_choice_out_of_network_when_none_in_network_is_honoured(decide):
    """Health Net "authorizes ... an appropriately qualified out-of-network health care professional when no
    participating Health Net provider is available"."""
    decision = decide(HN, RHEUM, "ppg-valley", chosen=23)
    assert (proposed(decision), decision.tier, decision.outcome) == ("23", "out-of-network", "certify")


def test_unqualified_choice_goes_to_a_physician_with_a_qualified_proposal(decide):
    """A choice that is not "appropriately qualified" (Health Net "of the same or equivalent specialty": an
    orthopaedic surgeon for a cardiology opinion) is not honoured; a physician decides, proposed a qualified one."""
    decision = decide(HN, CARDIOLOGY, "ppg-valley", involved=[4], chosen=6, requested_by="member")  # orthopaedics
    assert (decision.situation, decision.outcome, proposed(decision)) == ("member-choice-not-qualified", "physician-review", "05")


def test_third_opinion_covered_by_90_2_17_not_by_health_net(decide):
    """90.2.17 Third Opinion 1 covers a third opinion when the first two differ; Health Net: physician review."""
    bsp = decide(BSP, CARDIOLOGY, "ipa-harbor", involved=[15, 19], reasons=["opinions-differ"], third=True)
    assert bsp.qualifying and bsp.reason == "opinions-differ" and bsp.situation != "other-reason"
    hn = decide(HN, CARDIOLOGY, "ppg-valley", involved=[4], reasons=["opinions-differ"], third=True)
    assert (hn.qualifying, hn.outcome) == (False, "physician-review")


def test_90_2_17_third_opinion_1_a_third_opinion_is_covered_when_the_two_opinions_differ(decide):
    """90.2.17 Third Opinion 1: "In the event that the recommendation of the first and second physician differs
    ... a third opinion is also covered": a third opinion for another reason, or `opinions-differ` on a second
    opinion, is no qualifying situation (a physician decides, as for any other reason)."""
    other_third = decide(BSP, CARDIOLOGY, "ipa-harbor", involved=[15, 19], reasons=["questions-surgery"], third=True)
    assert (other_third.qualifying, other_third.situation) == (False, "other-reason")
    differ_second = decide(BSP, CARDIOLOGY, "ipa-harbor", reasons=["opinions-differ"])
    assert (differ_second.qualifying, differ_second.situation) == (False, "other-reason")


def test_incomplete_request_is_information_missing_without_proposal(decide):
    decision = decide(HN, CARDIOLOGY, "ppg-valley", complete=False)
    assert (decision.outcome, decision.tier, decision.provider) == ("information-missing", "none", None)


def test_the_engine_never_denies(decide):
    """Contract "The workflow": only a physician reviewer denies; no combination of inputs yields a denial."""
    specialties = (CARDIOLOGY, MED_ONC, HEM_ONC, FAMILY, RHEUM, NEUROSURGERY, "2084N0400X", "208600000X")
    groups = ("ppg-valley", "ppg-coastal", "ipa-harbor", "ipa-sunrise")
    outcomes = {
        decide(plan, specialty, group, involved=involved, chosen=chosen, reasons=reasons).outcome
        for plan, specialty, group, involved, chosen, reasons in itertools.product(
            (HN, BSP), specialties, groups, ([], [4, 15, 19]), (None, 4, 14, 22, 23), (["questions-surgery"], ["x"]))
    }
    assert outcomes <= {"certify", "physician-review", "member-services"}
    assert {"certify", "physician-review", "member-services"} <= outcomes
