"""Subscriber for received registrations: pass eligible ones on with the partner's tier and region, reject the rest."""

from __future__ import annotations

from collections.abc import Sequence
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
from dealreg_vetting.eligibility import Assessment, PartnerStanding, assess_registration

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Eligibility:
    config: VettingConfig

    async def on_registration_received(self, conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        await self.on_registrations_received(conn, [(incoming, outbox)])

    async def on_registrations_received(self, conn: Conn, run: Sequence[tuple[Incoming, Outbox]]) -> None:
        """Each registration screened once (the first time its id is seen), in a few statements for the run."""
        received = [RegistrationReceived.model_validate(incoming.event.data) for incoming, _ in run]
        partners = await store.get_partners(conn, sorted({r.partner_id for r in received}))
        screened = [(r, assess_registration(r, partners.get(r.partner_id), self.config)) for r in received]
        fresh = await store.insert_screened(
            conn,
            [
                store.Screened(
                    registration_id=r.registration_id,
                    partner_id=r.partner_id,
                    eligible=a.ineligible is None,
                    reason_code=a.ineligible.reason_code if a.ineligible else None,
                    flags=a.flags,
                    detail=a.ineligible.manager_reason if a.ineligible else "; ".join(a.notes),
                )
                for r, a in screened
            ],
        )
        for (_, outbox), (registration, assessment), first in zip(run, screened, fresh, strict=True):
            if first:
                self._emit(outbox, registration, partners.get(registration.partner_id), assessment)

    def _emit(
        self, outbox: Outbox, received: RegistrationReceived, partner: PartnerStanding | None, assessment: Assessment
    ) -> None:
        ineligible = assessment.ineligible
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
            log.info(
                "registration_ineligible",
                registration_id=str(received.registration_id),
                reason_code=ineligible.reason_code,
                reason=ineligible.manager_reason,
            )
            return
        assert partner is not None  # eligibility needs a known partner
        # the received registration's parts as they are (validated on the way in): not dumped and validated again
        vetted = RegistrationVetted(
            **dict(received), partner_tier=partner.tier, partner_region=partner.region, flags=assessment.flags
        )
        outbox.emit(REGISTRATIONS_VETTED, key=received.customer_key, type=EventType.REGISTRATION_VETTED, data=vetted)
        log.info("registration_eligible", registration_id=str(received.registration_id), flags=assessment.flags)
