"""Subscribers for partner onboarding: screen applications, then apply managers' decisions (and only those)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import structlog
from pydantic import ValidationError

from dealreg_shared.consumer import Incoming, PoisonRecord
from dealreg_shared.contracts import (
    DecisionRefused,
    EventType,
    PartnerApplicationDecided,
    PartnerApplicationInvalid,
    PartnerApplicationRejected,
    PartnerApplicationSubmitted,
    PartnerApplicationVetted,
    PartnerApproved,
    PartnerDecided,
    PartnerKeysUpdated,
    PartnerStatusChanged,
)
from dealreg_shared.db import Conn
from dealreg_shared.envelope import utcnow
from dealreg_shared.outbox import Outbox
from dealreg_shared.regions import region_of
from dealreg_shared.topics import PARTNERS
from dealreg_vetting import store
from dealreg_vetting.config import VettingConfig
from dealreg_vetting.decisions import (
    describe_errors,
    readable_uuid,
    refuse_application_decision,
    refuse_partner_decision,
)
from dealreg_vetting.domain import application_domains, partner_id_for, screen_application

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Onboarding:
    config: VettingConfig
    regions: dict[str, str]

    async def on_partner_application(self, conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        try:
            application = PartnerApplicationSubmitted.model_validate(incoming.event.data)
        except ValidationError as exc:
            await self._answer_invalid(incoming, outbox, exc)
            return
        domains = application_domains(application)
        region = region_of(application.country, self.regions)
        screening = screen_application(
            application,
            existing_partners=await store.get_partners_by_domain(conn, [domains.website, domains.email]),
            config=self.config,
            region=region,
        )
        partner_id = partner_id_for(screening.domain, application.application_id)
        fresh = await store.insert_application(
            conn,
            application_id=application.application_id,
            partner_id=partner_id,
            data=application.model_dump(mode="json"),
            screening=screening,
        )
        if not fresh:
            log.info("application_already_known", application_id=str(application.application_id))
            return
        outbox.emit(
            PARTNERS,
            key=partner_id,
            type=EventType.PARTNER_APPLICATION_VETTED,
            data=PartnerApplicationVetted(
                application_id=application.application_id,
                partner_id=partner_id,
                company_name=application.company_name,
                domain=screening.domain,
                country=application.country,
                contact=application.contact,
                checks=screening.checks,
                flags=screening.flags,
                recommendation=screening.recommendation,
            ),
            correlation_id=str(application.application_id),
        )
        # never more than a recommendation: the partner exists only once a manager's decision says so
        log.info("application_vetted", partner_id=partner_id, recommendation=screening.recommendation)

    async def _answer_invalid(self, incoming: Incoming, outbox: Outbox, exc: ValidationError) -> None:
        application_id = readable_uuid(incoming.event.data.get("application_id"))
        if application_id is None:
            raise PoisonRecord(f"an application without a valid application_id to answer to: {exc}") from None
        errors = describe_errors(exc)
        outbox.emit(
            PARTNERS,
            key=str(application_id),
            type=EventType.PARTNER_APPLICATION_INVALID,
            data=PartnerApplicationInvalid(application_id=application_id, errors=errors),
            correlation_id=str(application_id),
        )
        log.info("application_invalid", application_id=str(application_id), errors=errors)

    async def on_partner_decision(self, conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        data = incoming.event.data
        model: type[PartnerApplicationDecided | PartnerDecided]
        if incoming.event.type == EventType.PARTNER_DECIDED:
            model = PartnerDecided
        elif incoming.event.type == EventType.PARTNER_APPLICATION_DECIDED:
            model = PartnerApplicationDecided
        else:
            raise PoisonRecord(f"{incoming.event.type!r} is not a decision this topic carries")
        try:
            decided = model.model_validate(data)
        except ValidationError as exc:
            decision_id = readable_uuid(data.get("decision_id"))
            if decision_id is None:
                raise PoisonRecord(f"a decision without a valid decision_id to answer to: {exc}") from None
            subject = str(data.get("application_id") or data.get("partner_id") or "(none)")[:200]
            reason = "invalid decision: " + "; ".join(describe_errors(exc))
            self._refuse(outbox, decision_id, subject, str(data.get("decision", "(none)"))[:50], reason, key=subject)
            return
        if await store.decision_seen(conn, decided.decision_id):
            log.info("decision_already_applied", decision_id=str(decided.decision_id))
            return
        if isinstance(decided, PartnerDecided):
            outcome, detail = await self._decide_partner(conn, outbox, decided)
            subject = decided.partner_id
        else:
            outcome, detail = await self._decide_application(conn, outbox, decided)
            subject = str(decided.application_id)
        await store.insert_decision(
            conn,
            decision_id=decided.decision_id,
            subject_id=subject,
            decision=decided.decision,
            outcome=outcome,
            detail=detail,
            manager_id=decided.manager_id,
        )
        log.info("decision_" + outcome, subject=subject, decision=decided.decision, detail=detail)

    def _refuse(
        self, outbox: Outbox, decision_id: uuid.UUID, subject: str, decision: str, reason: str, key: str
    ) -> None:
        outbox.emit(
            PARTNERS,
            key=key,
            type=EventType.DECISION_REFUSED,
            data=DecisionRefused(
                decision_id=decision_id, subject_id=subject, decision=decision, reason=reason, occurred_at=utcnow()
            ),
            correlation_id=subject,
        )

    async def _decide_application(
        self, conn: Conn, outbox: Outbox, decided: PartnerApplicationDecided
    ) -> tuple[str, str]:
        row = await store.get_application(conn, decided.application_id)
        tier = decided.tier or self.config.default_tier
        domain: str = row["domain"] if row else ""
        partners = await store.get_partners_by_domain(conn, [domain]) if row and decided.decision == "approve" else {}
        refusal = refuse_application_decision(
            status=row["status"] if row else None,
            decision=decided.decision,
            tier=tier,
            config=self.config,
            domain=domain,
            domain_partner=partners.get(domain),
        )
        subject = str(decided.application_id)
        if refusal is not None or row is None:
            key = row["partner_id"] if row else subject
            self._refuse(outbox, decided.decision_id, subject, decided.decision, refusal or "", key=key)
            return "refused", refusal or ""
        application = PartnerApplicationSubmitted.model_validate(json.loads(row["data"]))
        partner_id: str = row["partner_id"]
        if decided.decision == "reject":
            await store.mark_application_decided(
                conn,
                application_id=decided.application_id,
                status="rejected",
                manager_id=decided.manager_id,
                reason=decided.reason,
            )
            outbox.emit(
                PARTNERS,
                key=partner_id,
                type=EventType.PARTNER_APPLICATION_REJECTED,
                data=PartnerApplicationRejected(
                    application_id=decided.application_id,
                    partner_id=partner_id,
                    company_name=application.company_name,
                    contact=application.contact,
                    reason=decided.reason,
                ),
                correlation_id=subject,
            )
            return "applied", "rejected"
        region = region_of(application.country, self.regions)
        await store.mark_application_decided(
            conn,
            application_id=decided.application_id,
            status="approved",
            manager_id=decided.manager_id,
            tier=tier,
            reason=decided.reason,
        )
        await store.insert_partner(
            conn,
            partner_id=partner_id,
            application_id=decided.application_id,
            domain=domain,
            company_name=application.company_name,
            tier=tier,
            region=region,
            public_keys=[k.model_dump() for k in application.public_keys],
        )
        outbox.emit(
            PARTNERS,
            key=partner_id,
            type=EventType.PARTNER_APPROVED,
            data=PartnerApproved(
                partner_id=partner_id,
                application_id=decided.application_id,
                company_name=application.company_name,
                domain=domain,
                tier=tier,
                region=region,
                contacts=[application.contact],
                public_keys=application.public_keys,
                webhook_url=application.webhook_url,
            ),
            correlation_id=subject,
        )
        return "applied", f"approved as {partner_id}, tier {tier}"

    async def _decide_partner(self, conn: Conn, outbox: Outbox, decided: PartnerDecided) -> tuple[str, str]:
        partner = await store.get_partner(conn, decided.partner_id, for_update=True)
        refusal = refuse_partner_decision(partner, decided)
        if refusal is not None:
            self._refuse(outbox, decided.decision_id, decided.partner_id, decided.decision, refusal, decided.partner_id)
            return "refused", refusal
        emit = outbox.emit
        key = decided.partner_id
        if decided.decision == "update_keys":
            keys = decided.public_keys or []
            await store.replace_partner_keys(conn, partner_id=key, public_keys=[k.model_dump() for k in keys])
            data = PartnerKeysUpdated(partner_id=key, public_keys=keys)
            emit(PARTNERS, key=key, type=EventType.PARTNER_KEYS_UPDATED, data=data, correlation_id=key)
            return "applied", f"keys now {', '.join(k.key_id for k in keys)}"
        active = decided.decision == "reinstate"
        await store.mark_partner_active(conn, partner_id=key, active=active, reason=decided.reason)
        kind = EventType.PARTNER_REINSTATED if active else EventType.PARTNER_SUSPENDED
        status = PartnerStatusChanged(partner_id=key, reason=decided.reason)
        emit(PARTNERS, key=key, type=kind, data=status, correlation_id=key)
        return "applied", str(kind)
