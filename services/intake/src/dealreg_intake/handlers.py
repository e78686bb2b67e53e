"""Intake's subscribers: translate each event into the domain's terms, decide, persist and emit in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import structlog
from aiokafka.structs import ConsumerRecord

from dealreg_intake import store
from dealreg_intake.domain import (
    PartnerView,
    Rejection,
    SubmissionRules,
    authenticate,
    capacity_exceeded,
    claimed_ids,
    content_hash,
    rate_limited,
    resubmission_rejection,
    still_active,
    to_received,
    validate,
    within_capacity,
)
from dealreg_intake.settings import IntakeConfig
from dealreg_shared.consumer import Incoming, PoisonRecord
from dealreg_shared.contracts import (
    EventType,
    PartnerApproved,
    PartnerKeysUpdated,
    PartnerStatusChanged,
    RegistrationReceived,
    RegistrationStatusChanged,
    Status,
)
from dealreg_shared.db import Conn
from dealreg_shared.envelope import utcnow
from dealreg_shared.outbox import Outbox, source_of
from dealreg_shared.statuses import emit_status
from dealreg_shared.topics import REGISTRATIONS_RECEIVED

log = structlog.get_logger(__name__)


class IntakeHandlers:
    """One instance per process; every method is a RecordProcessor handler (runs inside the unit of work)."""

    def __init__(self, *, config: IntakeConfig, regions: dict[str, str]) -> None:
        self.config = config
        self.regions = regions

    async def on_registration_submitted(self, conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        await self.on_registrations_submitted(conn, [(incoming, outbox)])

    async def on_registrations_submitted(self, conn: Conn, run: Sequence[tuple[Incoming, Outbox]]) -> None:
        """Each submission authenticated, checked against its partner's limits and stored or rejected, in order;
        the partners are read in one statement and locked in another."""
        claims = []
        for incoming, outbox in run:
            event = incoming.event
            if event.type != EventType.REGISTRATION_SUBMITTED:
                raise PoisonRecord(f"ce_type {event.type[:100]!r} is not {EventType.REGISTRATION_SUBMITTED.value}")
            ids = claimed_ids(event.data)
            if ids is None:
                raise PoisonRecord("the submission names no valid registration_id and partner_id to answer to")
            claims.append((incoming, outbox, *ids))
        partners = await store.get_partners(conn, sorted({partner_id for *_, partner_id in claims}))
        checked = []
        for incoming, outbox, registration_id, partner_id in claims:
            partner = partners.get(partner_id)
            ext = incoming.event.extensions
            rejection = authenticate(
                partner, key_id=ext.get("ce_keyid"), signature=ext.get("ce_signature"), value=incoming.value
            )
            checked.append((incoming, outbox, registration_id, partner_id, partner, rejection))
        # every check below and the inserts are one critical section per partner, whichever replica runs it
        authentic = sorted({c[3] for c in checked if c[5] is None})
        await store.lock_partners(conn, authentic)
        state = await store.admission_state(
            conn, partner_ids=authentic, registration_ids=[UUID(c[2]) for c in checked if c[5] is None]
        )
        decided: list[tuple[Incoming, Outbox, str, str, Rejection | RegistrationReceived | None]] = []
        for incoming, outbox, registration_id, partner_id, partner, rejection in checked:
            outcome: Rejection | RegistrationReceived | None = rejection
            if rejection is None and partner is not None:
                outcome = self._admit(state, partner, UUID(registration_id), incoming.event.data)
            decided.append((incoming, outbox, registration_id, partner_id, outcome))
        taken = await store.write_admissions(
            conn,
            state,
            registrations=[
                store.NewRegistration(o, state.existing[o.registration_id])
                for *_, o in decided
                if isinstance(o, RegistrationReceived)
            ],
            rejections=[
                store.RejectionRow(i.event.id, rid, pid, o.reason_code, o.detail)
                for i, _, rid, pid, o in decided
                if isinstance(o, Rejection)
            ],
        )
        late = []
        for incoming, outbox, registration_id, partner_id, outcome in decided:
            if isinstance(outcome, RegistrationReceived) and outcome.registration_id in taken:
                # another partner's submission took this id between our look and our insert (the same partner's
                # cannot: it waits for the lock); whatever it was, its content is not ours
                outcome = resubmission_rejection()
                late.append(
                    store.RejectionRow(
                        incoming.event.id, registration_id, partner_id, outcome.reason_code, outcome.detail
                    )
                )
            if isinstance(outcome, RegistrationReceived):
                _emit_received(outbox, outcome)
            elif isinstance(outcome, Rejection):
                _emit_rejection(outbox, registration_id, partner_id, outcome)
        if late:
            await store.write_admissions(conn, None, registrations=[], rejections=late)

    def _admit(
        self, state: store.AdmissionState, partner: PartnerView, registration_id: UUID, data: dict[str, object]
    ) -> Rejection | RegistrationReceived | None:
        """An authenticated submission (its partner locked, its state read): what to store and forward, the
        reason it is not, or None for a resubmission of the same content (answered before). Updates `state`."""
        digest = content_hash(data)
        limits = self.config.limits_for(partner.tier)
        existing = state.existing.get(registration_id)
        if existing == digest:
            log.info("resubmission_ignored", registration_id=str(registration_id), partner_id=partner.partner_id)
            return None
        if not state.take_token(partner.partner_id, per_second=limits.submissions_per_minute / 60, burst=limits.burst):
            return rate_limited(limits, partner.tier)
        now = utcnow()
        submitted = validate(data, SubmissionRules.at(now, self.config))
        if isinstance(submitted, Rejection):
            return submitted
        if existing is not None:
            return resubmission_rejection()
        active = state.active.get(partner.partner_id, 0)
        if not within_capacity(active, limits):
            return capacity_exceeded(active, limits, partner.tier)
        state.existing[registration_id] = digest
        state.active[partner.partner_id] = active + 1
        return to_received(submitted, now=now, regions=self.regions)

    async def on_partner_event(self, conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        """Intake's own projection of partners: who is approved and active, with which keys and tier."""
        event = incoming.event
        if event.type == EventType.PARTNER_APPROVED:
            approved = PartnerApproved.model_validate(event.data)
            await store.upsert_partner(
                conn, partner_id=approved.partner_id, active=True, tier=approved.tier, region=approved.region
            )
            await store.replace_partner_keys(
                conn,
                partner_id=approved.partner_id,
                keys={k.key_id: k.public_key for k in approved.public_keys},
            )
        elif event.type in (EventType.PARTNER_SUSPENDED, EventType.PARTNER_REINSTATED):
            changed = PartnerStatusChanged.model_validate(event.data)
            active = event.type == EventType.PARTNER_REINSTATED
            if not await store.mark_partner_active(conn, partner_id=changed.partner_id, active=active):
                log.warning("partner_event_for_unknown_partner", partner_id=changed.partner_id)
        elif event.type == EventType.PARTNER_KEYS_UPDATED:
            updated = PartnerKeysUpdated.model_validate(event.data)
            if not await store.partner_known(conn, updated.partner_id):
                log.warning("partner_event_for_unknown_partner", partner_id=updated.partner_id)
                return
            await store.replace_partner_keys(
                conn,
                partner_id=updated.partner_id,
                keys={k.key_id: k.public_key for k in updated.public_keys},
            )
        # applications being vetted or rejected are not partners yet: nothing for intake to know

    async def on_registration_status(self, conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        """Follow what later stages decide, so capacity counts only registrations that are still active."""
        changed = _later_stage_status(incoming)
        if changed is not None:
            await store.mark_registration_statuses(conn, [changed])

    async def on_registration_statuses(self, conn: Conn, run: Sequence[tuple[Incoming, Outbox]]) -> None:
        """`on_registration_status` for a run of records: one statement."""
        changes = [changed for incoming, _ in run if (changed := _later_stage_status(incoming)) is not None]
        if changes:
            await store.mark_registration_statuses(conn, changes)


_OWN_STATUS = {
    ("ce_type", EventType.REGISTRATION_STATUS_CHANGED.value.encode()),
    ("ce_source", source_of("intake").encode()),
}


def own_status(record: ConsumerRecord[Any, Any]) -> bool:
    """Intake's own answer on the status topic (half of what it reads there), known from its headers: nothing to
    apply (see `_later_stage_status`), so the subscriber passes it over without an inbox row or a transaction."""
    return _OWN_STATUS <= set(record.headers or ())


def _later_stage_status(incoming: Incoming) -> store.StatusChange | None:
    if incoming.event.type != EventType.REGISTRATION_STATUS_CHANGED or incoming.event.data.get("stage") == "intake":
        # intake's own answers (half of what it reads here): a rejected submission never changes a
        # registration intake stored, and a received one says what intake already knows
        return None
    changed = RegistrationStatusChanged.model_validate(incoming.event.data)
    return store.StatusChange(
        registration_id=changed.registration_id,
        partner_id=changed.partner_id,
        status=changed.status,
        active=still_active(changed.status),
        at=changed.occurred_at,
    )


def _emit_received(outbox: Outbox, received: RegistrationReceived) -> None:
    emit_status(
        outbox,
        registration_id=received.registration_id,
        partner_id=received.partner_id,
        status=Status.RECEIVED,
        stage="intake",
        partner_message="The registration was received and is being checked.",
        customer_name=received.customer.company_name,
        region=received.region,
    )
    outbox.emit(
        REGISTRATIONS_RECEIVED,
        key=received.customer_key,
        type=EventType.REGISTRATION_RECEIVED,
        data=received,
        correlation_id=str(received.registration_id),
    )
    log.info("registration_received", registration_id=str(received.registration_id), partner_id=received.partner_id)


def _emit_rejection(outbox: Outbox, registration_id: str, partner_id: str, rejection: Rejection) -> None:
    emit_status(
        outbox,
        registration_id=registration_id,
        partner_id=partner_id,
        status=Status.REJECTED,
        stage="intake",
        reason_code=rejection.reason_code,
        partner_message=rejection.partner_message,
        manager_detail=rejection.detail,
    )
    log.info(
        "registration_rejected",
        registration_id=registration_id,
        partner_id=partner_id,
        reason_code=rejection.reason_code,
    )
