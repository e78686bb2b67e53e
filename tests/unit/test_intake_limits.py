"""Intake's pure decisions about partners' limits, identities and what stays active."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dealreg_intake.domain import (
    SubmissionRules,
    capacity_exceeded,
    claimed_ids,
    rate_limited,
    still_active,
    within_capacity,
)
from dealreg_intake.settings import IntakeConfig, TierLimits
from dealreg_shared.contracts import ReasonCode, Status
from tests.unit.test_intake_domain import KEY, PARTNER, SUBMITTED, VALUE, _auth


@pytest.mark.parametrize("partner_id", ["p-northwind\n", "P-Northwind", "p northwind", "-p", "p\x00"])
def test_claimed_ids_refuses_a_partner_id_that_is_no_identifier(partner_id: str) -> None:
    assert claimed_ids({"registration_id": SUBMITTED["registration_id"], "partner_id": partner_id}) is None


def test_authentication_detail_repeats_a_hostile_key_id_only_short_and_printable() -> None:
    rejection = _auth(PARTNER, "k\x00" + "x" * 5000, KEY.sign(VALUE))
    assert rejection.reason_code == ReasonCode.UNAUTHENTICATED
    assert len(rejection.detail["key_id"]) <= 64 and rejection.detail["key_id"].isprintable()


def test_submission_rules_take_today_horizon_and_clock_skew_from_the_configuration() -> None:
    now = datetime(2026, 11, 23, 23, 59, tzinfo=UTC)
    rules = SubmissionRules.at(now, IntakeConfig(close_date_horizon_days=30, max_clock_skew_s=60))
    assert rules == SubmissionRules(date(2026, 11, 23), 30, now + timedelta(seconds=60))


def test_a_tier_without_configured_limits_gets_the_default_limits() -> None:
    gold = TierLimits(burst=500, max_active_registrations=5000)
    config = IntakeConfig(tiers={"gold": gold})
    assert config.limits_for("gold") == gold
    assert config.limits_for("registered") == config.default_limits
    assert config.limits_for(None) == config.default_limits


def test_capacity_holds_strictly_below_the_tiers_maximum() -> None:
    limits = TierLimits(max_active_registrations=3)
    assert within_capacity(2, limits)
    assert not within_capacity(3, limits)
    assert not within_capacity(4, limits)


def test_limit_rejections_carry_their_reason_codes_and_tell_the_partner_its_own_limits() -> None:
    limits = TierLimits(submissions_per_minute=30, burst=10, max_active_registrations=3)
    limited = rate_limited(limits, "silver")
    assert limited.reason_code == ReasonCode.RATE_LIMITED
    assert "10 at once" in limited.partner_message and "30 a minute" in limited.partner_message
    full = capacity_exceeded(3, limits, "silver")
    assert full.reason_code == ReasonCode.CAPACITY_EXCEEDED
    assert "3 active registrations" in full.partner_message
    assert full.detail == {"tier": "silver", "active": 3, "max_active_registrations": 3}


@pytest.mark.parametrize(
    ("status", "active"),
    [
        (Status.RECEIVED, True),
        (Status.UNDER_REVIEW, True),
        (Status.APPROVED, True),
        (Status.EXPIRING, True),
        (Status.REJECTED, False),
        (Status.EXPIRED, False),
    ],
)
def test_a_registration_stops_counting_against_capacity_once_rejected_or_expired(status: Status, active: bool) -> None:
    assert still_active(status) is active
