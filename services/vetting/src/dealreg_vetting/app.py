"""Vetting's subscribers and its one wiring point, `build_app`."""

from __future__ import annotations

import json

import structlog
from faststream import FastStream

from dealreg_shared.consumer import Incoming
from dealreg_shared.contracts import (
    DecisionRefused,
    EventType,
    PartnerApplicationDecided,
    PartnerApplicationRejected,
    PartnerApplicationSubmitted,
    PartnerApplicationVetted,
    PartnerApproved,
    RegistrationReceived,
    RegistrationVetted,
    Status,
)
from dealreg_shared.db import Conn
from dealreg_shared.envelope import utcnow
from dealreg_shared.outbox import Outbox
from dealreg_shared.regions import parse_regions, region_of
from dealreg_shared.runtime import ServiceRuntime
from dealreg_shared.statuses import emit_status
from dealreg_shared.topics import (
    PARTNER_APPLICATIONS,
    PARTNER_DECISIONS,
    PARTNERS,
    REGISTRATIONS_RECEIVED,
    REGISTRATIONS_VETTED,
)
from dealreg_vetting import store
from dealreg_vetting.domain import check_eligibility, partner_id_for, screen_application
from dealreg_vetting.settings import VettingSettings

SERVICE = "vetting"
log = structlog.get_logger(__name__)


def build_app(settings: VettingSettings) -> FastStream:
    runtime = ServiceRuntime(service=SERVICE, settings=settings, package="dealreg_vetting")
    regions = parse_regions(settings.regions)

    async def on_partner_application(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        application = PartnerApplicationSubmitted.model_validate(incoming.event.data)
        screening = screen_application(
            application,
            existing_partner_domains=await store.get_partner_domains(conn),
            denied=settings.denied_domains,
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
        log.info("application_vetted", partner_id=partner_id, recommendation=screening.recommendation)

    async def on_partner_decision(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        decided = PartnerApplicationDecided.model_validate(incoming.event.data)
        row = await store.get_application(conn, decided.application_id)
        refusal = (
            "unknown application"
            if row is None
            else f"application already {row['status']}"
            if row["status"] != "pending"
            else None
        )
        if refusal is not None or row is None:
            outbox.emit(
                PARTNERS,
                key=row["partner_id"] if row else str(decided.application_id),
                type=EventType.DECISION_REFUSED,
                data=DecisionRefused(
                    decision_id=decided.decision_id,
                    subject_id=str(decided.application_id),
                    decision=decided.decision,
                    reason=refusal or "",
                    occurred_at=utcnow(),
                ),
                correlation_id=str(decided.application_id),
            )
            log.info("decision_refused", reason=refusal)
            return
        application = PartnerApplicationSubmitted.model_validate(json.loads(row["data"]))
        partner_id: str = row["partner_id"]
        if decided.decision == "approve":
            tier = decided.tier or settings.default_tier
            region = region_of(application.country, regions)
            await store.mark_application_decided(
                conn, application_id=decided.application_id, status="approved", manager_id=decided.manager_id
            )
            await store.insert_partner(
                conn,
                partner_id=partner_id,
                application_id=decided.application_id,
                domain=row["domain"],
                company_name=application.company_name,
                tier=tier,
                region=region,
            )
            outbox.emit(
                PARTNERS,
                key=partner_id,
                type=EventType.PARTNER_APPROVED,
                data=PartnerApproved(
                    partner_id=partner_id,
                    application_id=decided.application_id,
                    company_name=application.company_name,
                    domain=row["domain"],
                    tier=tier,
                    region=region,
                    contacts=[application.contact],
                    public_keys=application.public_keys,
                    webhook_url=application.webhook_url,
                ),
                correlation_id=str(decided.application_id),
            )
        else:
            await store.mark_application_decided(
                conn, application_id=decided.application_id, status="rejected", manager_id=decided.manager_id
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
                correlation_id=str(decided.application_id),
            )
        log.info("application_decided", partner_id=partner_id, decision=decided.decision)

    async def on_registration_received(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        received = RegistrationReceived.model_validate(incoming.event.data)
        partner = await store.get_partner(conn, received.partner_id)
        ineligible = check_eligibility(received, partner)
        fresh = await store.insert_screened(
            conn,
            registration_id=received.registration_id,
            partner_id=received.partner_id,
            eligible=ineligible is None,
            reason_code=ineligible.reason_code if ineligible else None,
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
            return
        assert partner is not None
        vetted = RegistrationVetted(**received.model_dump(), partner_tier=partner.tier, partner_region=partner.region)
        outbox.emit(REGISTRATIONS_VETTED, key=received.customer_key, type=EventType.REGISTRATION_VETTED, data=vetted)

    runtime.subscribe(PARTNER_APPLICATIONS, on_partner_application)
    runtime.subscribe(PARTNER_DECISIONS, on_partner_decision)
    runtime.subscribe(REGISTRATIONS_RECEIVED, on_registration_received)
    return runtime.app()
