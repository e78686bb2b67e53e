"""Subscriber for received registrations: pass eligible ones on with the partner's tier and region, reject the rest."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from dealreg_shared.consumer import Incoming
from dealreg_shared.contracts import EventType, RegistrationReceived, RegistrationVetted, Status
from dealreg_shared.db import Conn
from dealreg_shared.outbox import Outbox
from dealreg_shared.statuses import emit_status
from dealreg_shared.topics import REGISTRATIONS_VETTED
from dealreg_vetting import store
from dealreg_vetting.config import VettingConfig
from dealreg_vetting.eligibility import assess_registration

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Eligibility:
    config: VettingConfig

    async def on_registration_received(self, conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        received = RegistrationReceived.model_validate(incoming.event.data)
        partner = await store.get_partner(conn, received.partner_id)
        assessment = assess_registration(received, partner, self.config)
        ineligible = assessment.ineligible
        fresh = await store.insert_screened(
            conn,
            registration_id=received.registration_id,
            partner_id=received.partner_id,
            eligible=ineligible is None,
            reason_code=ineligible.reason_code if ineligible else None,
            flags=assessment.flags,
            detail=ineligible.manager_reason if ineligible else "; ".join(assessment.notes),
        )
        if not fresh:
            return
        if ineligible is not None:
            emit_status(
                outbox,
                registration_id=received.registration_id,
                partner_id=received.partner_id,
                status=Status.REJECTED,
                stage="vetting",
                reason_code=ineligible.reason_code,
                partner_message=ineligible.partner_message,
                manager_detail={"reason": ineligible.manager_reason},
                customer_name=received.customer.company_name,
                region=received.region,
            )
            log.info("registration_ineligible", reason_code=ineligible.reason_code, reason=ineligible.manager_reason)
            return
        assert partner is not None  # eligibility needs a known partner
        vetted = RegistrationVetted(
            **received.model_dump(), partner_tier=partner.tier, partner_region=partner.region, flags=assessment.flags
        )
        outbox.emit(REGISTRATIONS_VETTED, key=received.customer_key, type=EventType.REGISTRATION_VETTED, data=vetted)
        log.info("registration_eligible", flags=assessment.flags)
