"""Notify's subscribers, its delivery and digest workers, and its one wiring point, `build_app`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

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
from dealreg_notify.retention import Retention
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
# Postgres settings on each of notify's connections. Index paths over sequential scans: notify's tables start empty
# and grow by thousands a minute, and a connection keeps the plans it prepared. Planned while `notifications` held a
# few rows, marking mail sent settled on a sequential scan (the cheapest plan on a few pages) and went on reading the
# whole table at every call until autovacuum first analyzed it: 35 ms a call at 25,000 rows, a core of Postgres while
# a burst's mail went out. Notify's statements are meant to find their rows through an index (tests count the buffers
# that claims and marks touch); custom plans (planned anew each call) fixed it too, at 60% more Postgres time a
# notification in `bench_notify`.
DB_SETTINGS = {"enable_seqscan": "off"}


def load_directory(settings: NotifySettings) -> Directory:
    """The [notify] section of the config file over the environment's default desk; a bad one stops start-up."""
    fallback = Directory.single_desk(tuple(settings.managers), settings.manager_webhook_url or None)
    config = load_section_or_exit(settings.config_file, SERVICE, NotifyConfig, service=SERVICE)
    return config.directory(fallback)


async def _application_state(conn: Conn, application_id: uuid.UUID, state: str) -> None:
    """What one-click links on an application check: only a vetted, undecided one can still be decided."""
    await store_actions.set_state(conn, kind="application", record_id=str(application_id), state=state)


@dataclass(frozen=True)
class StatusNotifications:
    """What registrations' statuses (and refused decisions) notify, recorded for delivery."""

    settings: NotifySettings
    directory: Directory

    def linked(self, items: list[Notification]) -> list[Notification]:
        if not self.settings.actions_port:
            return items
        return link_notifications(
            items,
            base_url=self.settings.actions_base_url,
            secret=self.settings.actions_secret,
            ttl_s=self.settings.actions_ttl_s,
            now=time.time(),
            new_id=lambda: uuid.uuid4().hex,
        )

    async def record(self, conn: Conn, recorded: list[store.Recorded]) -> None:
        recorded = [store.Recorded(r.event_id, r.event_type, self.linked(r.items)) for r in recorded]
        await store.insert_notifications(conn, recorded)
        items = [n for r in recorded for n in r.items]
        log.info("notifications_recorded", count=len(items), held=sum(n.digest != "none" for n in items))

    async def on_registration_statuses(self, conn: Conn, run: Sequence[tuple[Incoming, Outbox]]) -> None:
        """Statuses (and refused decisions) become notifications: a few statements for the whole run."""
        statuses: list[tuple[Incoming, RegistrationStatusChanged | None]] = []
        for incoming, _ in run:
            event = incoming.event
            if event.type == EventType.DECISION_REFUSED:
                statuses.append((incoming, None))
            elif event.type == EventType.REGISTRATION_STATUS_CHANGED:
                statuses.append((incoming, RegistrationStatusChanged.model_validate(event.data)))
            else:
                log.info("event_type_ignored", event_id=event.id)  # a newer producer's event: not for notify
        changed = [s for _, s in statuses if s is not None]
        wanted = {p for s in changed for p in (s.partner_id, *competing_partner_ids(s))}
        partners = await store.set_states_get_partners(
            conn,
            kind="registration",
            states=[(str(s.registration_id), s.status.value) for s in changed],
            partner_ids=sorted(wanted),
        )
        recorded = []
        for incoming, status in statuses:
            if status is None:
                items = route_decision_refused(DecisionRefused.model_validate(incoming.event.data), self.directory)
            else:
                names = {p: partners[p].company_name for p in competing_partner_ids(status) if p in partners}
                items = route_status(status, partners.get(status.partner_id), self.directory, names)
            recorded.append(store.Recorded(incoming.event.id, incoming.event.type, items))
        await self.record(conn, recorded)

    async def on_registration_status(self, conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        await self.on_registration_statuses(conn, [(incoming, outbox)])


def build_app(settings: NotifySettings) -> FastStream:
    runtime = ServiceRuntime(service=SERVICE, settings=settings, package="dealreg_notify", db_settings=DB_SETTINGS)
    directory = load_directory(settings)
    regions = parse_regions(settings.regions)

    notes = StatusNotifications(settings, directory)
    record = notes.record

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
            await record(conn, [store.Recorded(incoming.event.id, incoming.event.type, items)])

    runtime.subscribe(REGISTRATION_STATUS, notes.on_registration_status, run_handler=notes.on_registration_statuses)
    runtime.subscribe(PARTNERS, on_partner_event)
    runtime.add_background(
        "delivery", lambda: Deliverer(pool=runtime.pool, settings=settings, directory=directory).run()
    )
    runtime.add_background("digest", lambda: Digester(pool=runtime.pool, settings=settings).run())
    if settings.notification_retention_days:
        runtime.add_background("retention", lambda: Retention(pool=runtime.pool, settings=settings).run())
    if settings.actions_port:
        runtime.add_background(
            "actions",
            lambda: ActionServer(
                pool=runtime.pool, secret=settings.actions_secret, port=settings.actions_port, service=SERVICE
            ).run(),
        )
    return runtime.app()
