"""Intake's subscribers and its one wiring point, `build_app`."""

from __future__ import annotations

import structlog
from faststream import FastStream

from dealreg_intake import store
from dealreg_intake.domain import (
    Rejection,
    authenticate,
    claimed_ids,
    content_hash,
    resubmission_rejection,
    to_received,
    validate,
)
from dealreg_intake.settings import IntakeSettings
from dealreg_shared.consumer import Incoming, PoisonRecord
from dealreg_shared.contracts import (
    EventType,
    PartnerApproved,
    PartnerKeysUpdated,
    PartnerStatusChanged,
    Status,
)
from dealreg_shared.db import Conn
from dealreg_shared.envelope import utcnow
from dealreg_shared.outbox import Outbox
from dealreg_shared.regions import parse_regions
from dealreg_shared.runtime import ServiceRuntime
from dealreg_shared.statuses import emit_status
from dealreg_shared.topics import PARTNERS, REGISTRATIONS_RECEIVED, REGISTRATIONS_SUBMITTED

SERVICE = "intake"
log = structlog.get_logger(__name__)


def build_app(settings: IntakeSettings) -> FastStream:
    runtime = ServiceRuntime(service=SERVICE, settings=settings, package="dealreg_intake")
    regions = parse_regions(settings.regions)

    async def on_registration_submitted(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        ids = claimed_ids(incoming.event.data)
        if ids is None:
            raise PoisonRecord("the submission names no valid registration_id and partner_id to answer to")
        registration_id, partner_id = ids
        ext = incoming.event.extensions
        partner = await store.get_partner(conn, partner_id)
        rejection = authenticate(
            partner, key_id=ext.get("ce_keyid"), signature=ext.get("ce_signature"), value=incoming.value
        )
        if rejection is None:
            submitted = validate(incoming.event.data)
            if isinstance(submitted, Rejection):
                rejection = submitted
            else:
                digest = content_hash(incoming.value)
                existing = await store.get_content_hash(conn, submitted.registration_id)
                if existing == digest:
                    log.info("resubmission_ignored", registration_id=registration_id)
                    return
                if existing is None:
                    received = to_received(submitted, now=utcnow(), regions=regions)
                    await store.insert_registration(
                        conn,
                        registration_id=received.registration_id,
                        partner_id=received.partner_id,
                        content_sha256=digest,
                        customer_key=received.customer_key,
                        region=received.region,
                        received_at=received.received_at,
                        data=received.model_dump(mode="json"),
                    )
                    emit_status(
                        outbox,
                        registration_id=registration_id,
                        partner_id=partner_id,
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
                        correlation_id=registration_id,
                    )
                    log.info("registration_received", registration_id=registration_id, partner_id=partner_id)
                    return
                rejection = resubmission_rejection()
        await store.insert_rejection(
            conn,
            event_id=incoming.event.id,
            registration_id=registration_id,
            partner_id=partner_id,
            reason_code=rejection.reason_code,
            detail=rejection.detail,
        )
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
        log.info("registration_rejected", registration_id=registration_id, reason_code=rejection.reason_code)

    async def on_partner_event(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
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
            await store.mark_partner_active(conn, partner_id=changed.partner_id, active=active)
        elif event.type == EventType.PARTNER_KEYS_UPDATED:
            updated = PartnerKeysUpdated.model_validate(event.data)
            await store.replace_partner_keys(
                conn,
                partner_id=updated.partner_id,
                keys={k.key_id: k.public_key for k in updated.public_keys},
            )
        # applications being vetted or rejected are not partners yet: nothing for intake to know

    runtime.subscribe(REGISTRATIONS_SUBMITTED, on_registration_submitted)
    runtime.subscribe(PARTNERS, on_partner_event)
    return runtime.app()
