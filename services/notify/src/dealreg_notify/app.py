"""Notify's subscribers, its delivery and digest workers, and its one wiring point, `build_app`."""

from __future__ import annotations

import time
import uuid

import structlog
from faststream import FastStream

from dealreg_notify import store, store_actions
from dealreg_notify.action_server import ActionServer
from dealreg_notify.actions import link_notifications
from dealreg_notify.delivery import Deliverer
from dealreg_notify.digest import Digester
from dealreg_notify.directory import Directory, NotifyConfig
from dealreg_notify.domain import (
    Notification,
    competing_partner_ids,
    partner_of,
    route_application_rejected,
    route_application_vetted,
    route_decision_refused,
    route_partner_approved,
    route_status,
)
from dealreg_notify.settings import NotifySettings
from dealreg_shared.config import load_section_or_exit
from dealreg_shared.consumer import Incoming
from dealreg_shared.contracts import (
    DecisionRefused,
    EventType,
    PartnerApplicationRejected,
    PartnerApplicationVetted,
    PartnerApproved,
    PartnerStatusChanged,
    RegistrationStatusChanged,
)
from dealreg_shared.db import Conn
from dealreg_shared.outbox import Outbox
from dealreg_shared.regions import parse_regions, region_of
from dealreg_shared.runtime import ServiceRuntime
from dealreg_shared.topics import PARTNERS, REGISTRATION_STATUS

SERVICE = "notify"
log = structlog.get_logger(__name__)


def load_directory(settings: NotifySettings) -> Directory:
    """The [notify] section of the config file over the environment's default desk; a bad one stops start-up."""
    fallback = Directory.single_desk(tuple(settings.managers), settings.manager_webhook_url or None)
    config = load_section_or_exit(settings.config_file, SERVICE, NotifyConfig, service=SERVICE)
    return config.directory(fallback)


async def _application_state(conn: Conn, application_id: uuid.UUID, state: str) -> None:
    """What one-click links on an application check: only a vetted, undecided one can still be decided."""
    await store_actions.set_state(conn, kind="application", record_id=str(application_id), state=state)


def build_app(settings: NotifySettings) -> FastStream:
    runtime = ServiceRuntime(service=SERVICE, settings=settings, package="dealreg_notify")
    directory = load_directory(settings)
    regions = parse_regions(settings.regions)

    async def record(conn: Conn, incoming: Incoming, items: list[Notification]) -> None:
        if settings.actions_port:
            items = link_notifications(
                items,
                base_url=settings.actions_base_url,
                secret=settings.actions_secret,
                ttl_s=settings.actions_ttl_s,
                now=time.time(),
                new_id=lambda: uuid.uuid4().hex,
            )
        await store.insert_notifications(conn, event_id=incoming.event.id, event_type=incoming.event.type, items=items)
        log.info("notifications_recorded", count=len(items), held=sum(n.digest != "none" for n in items))

    async def on_registration_status(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        event = incoming.event
        if event.type == EventType.DECISION_REFUSED:
            await record(conn, incoming, route_decision_refused(DecisionRefused.model_validate(event.data), directory))
            return
        if event.type != EventType.REGISTRATION_STATUS_CHANGED:
            log.info("event_type_ignored")  # a newer producer's event: not for notify to act on
            return
        status = RegistrationStatusChanged.model_validate(event.data)
        rid = str(status.registration_id)
        await store_actions.set_state(conn, kind="registration", record_id=rid, state=status.status.value)
        partner = await store.get_partner(conn, status.partner_id)
        competing = competing_partner_ids(status)
        names = await store.get_partner_names(conn, competing) if competing else {}
        await record(conn, incoming, route_status(status, partner, directory, names))

    async def on_partner_event(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        event = incoming.event
        items: list[Notification] = []
        if event.type == EventType.PARTNER_APPLICATION_VETTED:
            vetted = PartnerApplicationVetted.model_validate(event.data)
            items = route_application_vetted(vetted, directory, region_of(vetted.country, regions))
            await _application_state(conn, vetted.application_id, "vetted")
        elif event.type == EventType.PARTNER_APPROVED:
            approved = PartnerApproved.model_validate(event.data)
            await store.upsert_partner(conn, partner_of(approved), active=True)
            await _application_state(conn, approved.application_id, "approved")
            items = route_partner_approved(approved, directory)
        elif event.type == EventType.PARTNER_APPLICATION_REJECTED:
            rejected = PartnerApplicationRejected.model_validate(event.data)
            await _application_state(conn, rejected.application_id, "rejected")
            items = route_application_rejected(rejected)
        elif event.type in (EventType.PARTNER_SUSPENDED, EventType.PARTNER_REINSTATED):
            changed = PartnerStatusChanged.model_validate(event.data)
            await store.mark_partner_active(conn, changed.partner_id, active=event.type == EventType.PARTNER_REINSTATED)
        elif event.type == EventType.DECISION_REFUSED:
            items = route_decision_refused(DecisionRefused.model_validate(event.data), directory)
        if items:
            await record(conn, incoming, items)

    runtime.subscribe(REGISTRATION_STATUS, on_registration_status)
    runtime.subscribe(PARTNERS, on_partner_event)
    runtime.add_background(
        "delivery", lambda: Deliverer(pool=runtime.pool, settings=settings, directory=directory).run()
    )
    runtime.add_background("digest", lambda: Digester(pool=runtime.pool, settings=settings).run())
    if settings.actions_port:
        runtime.add_background(
            "actions",
            lambda: ActionServer(
                pool=runtime.pool, secret=settings.actions_secret, port=settings.actions_port, service=SERVICE
            ).run(),
        )
    return runtime.app()
