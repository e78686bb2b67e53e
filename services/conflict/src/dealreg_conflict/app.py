"""Conflict's subscribers and its one wiring point, `build_app`."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog
from faststream import FastStream

from dealreg_conflict import store
from dealreg_conflict.clock import Clock
from dealreg_conflict.domain import (
    ACTIVE,
    Candidate,
    Outcome,
    blocking_keys,
    decide,
    detect_conflicts,
    expiring_from,
    review_due,
)
from dealreg_conflict.managers import ManagerDecisions
from dealreg_conflict.matching import clean_company_name, name_keys
from dealreg_conflict.policies import ConflictConfig, Policies
from dealreg_conflict.settings import ConflictSettings
from dealreg_conflict.sweeper import Sweeper
from dealreg_shared.config import load_section_or_exit
from dealreg_shared.consumer import Incoming, PoisonRecord
from dealreg_shared.contracts import EventType, OpportunityCreated, RegistrationVetted, Status
from dealreg_shared.db import Conn
from dealreg_shared.domains import registrable_domain
from dealreg_shared.outbox import Outbox
from dealreg_shared.regions import parse_regions
from dealreg_shared.runtime import ServiceRuntime
from dealreg_shared.statuses import emit_status
from dealreg_shared.topics import OPPORTUNITIES, REGISTRATION_DECISIONS, REGISTRATIONS_VETTED

SERVICE = "conflict"
log = structlog.get_logger(__name__)


def emit_opportunity(outbox: Outbox, data: dict[str, Any] | RegistrationVetted, protected_until: datetime) -> None:
    # a registration conflict has just validated is not validated again (a tenth of conflict's CPU)
    reg = data if isinstance(data, RegistrationVetted) else RegistrationVetted.model_validate(data)
    outbox.emit(
        OPPORTUNITIES,
        key=reg.customer_key,
        type=EventType.OPPORTUNITY_CREATED,
        data=OpportunityCreated(
            opportunity_id=uuid.uuid5(uuid.NAMESPACE_URL, f"dealreg:opportunity:{reg.registration_id}"),
            registration_id=reg.registration_id,
            partner_id=reg.partner_id,
            customer={**reg.customer.model_dump(mode="json"), "customer_key": reg.customer_key},
            product_lines=reg.opportunity.product_lines,
            estimated_value=reg.opportunity.estimated_value,
            expected_close_date=reg.opportunity.expected_close_date,
            protected_until=protected_until,
        ),
        correlation_id=str(reg.registration_id),
    )


async def create_opportunity(
    conn: Conn,
    outbox: Outbox,
    *,
    registration_id: uuid.UUID,
    customer_key: str,
    data: dict[str, Any] | RegistrationVetted,
    until: datetime,
) -> None:
    """Exactly one opportunity.created per approved registration, whatever is replayed."""
    opportunity_id = uuid.uuid5(uuid.NAMESPACE_URL, f"dealreg:opportunity:{registration_id}")
    if await store.insert_opportunity(
        conn, opportunity_id=opportunity_id, registration_id=registration_id, customer_key=customer_key
    ):
        emit_opportunity(outbox, data, until)


def candidate_of(reg: RegistrationVetted) -> Candidate:
    return Candidate(
        str(reg.registration_id),
        reg.partner_id,
        reg.customer_key,
        frozenset(reg.opportunity.product_lines),
        "new",
        reg.registrable_domain or registrable_domain(reg.customer.domain),
        clean_company_name(reg.customer.company_name),
        reg.customer.country,
        reg.region,
    )


class Earlier:
    """The registrations decided active earlier in a run, found as the candidates query finds stored ones: by
    customer key, by domain, by a shared name key; in the order they were decided."""

    def __init__(self) -> None:
        self._decided: list[tuple[Candidate, datetime | None]] = []
        self._by_key: dict[str, list[int]] = {}

    def add(self, candidate: Candidate, until: datetime | None, keys: frozenset[str]) -> None:
        for key in _lookup_keys(candidate, keys):
            self._by_key.setdefault(key, []).append(len(self._decided))
        self._decided.append((candidate, until))

    def found(self, new: Candidate, keys: frozenset[str], now: datetime) -> list[Candidate]:
        hits = sorted({i for key in _lookup_keys(new, keys) for i in self._by_key.get(key, ())})
        return [c for c, until in map(self._decided.__getitem__, hits) if until is None or until > now]


def _lookup_keys(candidate: Candidate, keys: frozenset[str]) -> list[str]:
    found = [f"customer:{candidate.customer_key}", *(f"name:{k}" for k in keys)]
    return [*found, f"domain:{candidate.domain}"] if candidate.domain else found


@dataclass(frozen=True)
class Decider:
    """Decides vetted registrations: approved, under review, or rejected as another partner's customer."""

    policies: Policies
    clock: Clock
    replica: str  # which replica decided: for operators and the race test

    async def on_registrations_vetted(self, conn: Conn, run: Sequence[tuple[Incoming, Outbox]]) -> None:
        """Each registration decided once, in order, against the active ones, those decided earlier in the run
        among them (as one by one): the run's customers locked, then a few statements for the whole run."""
        regs = [(outbox, RegistrationVetted.model_validate(incoming.event.data)) for incoming, outbox in run]
        news = [candidate_of(reg) for _, reg in regs]
        # every replica deciding about a registration that could be one of these customers waits here
        await store.lock_blocking_keys(conn, sorted({key for new in news for key in blocking_keys(new)}))
        seen = await store.existing_registrations(conn, [reg.registration_id for _, reg in regs])
        fresh = []
        for (outbox, reg), new in zip(regs, news, strict=True):
            if reg.registration_id not in seen:  # decided before, or earlier in the run
                seen.add(reg.registration_id)
                fresh.append((outbox, reg, new))
        if not fresh:
            return
        now = await self.clock.now(conn)
        lines = sorted({line for _, reg, _ in fresh for line in reg.opportunity.product_lines})
        territories = await store.get_active_territories(conn, product_lines=lines, now=now)
        stored = await store.get_active_candidates(conn, [new for *_, new in fresh], now=now)
        earlier = Earlier()  # the run's decisions so far, as candidates of the next
        decisions = []
        for (outbox, reg, new), candidates in zip(fresh, stored, strict=True):
            keys = name_keys(new.name, new.country)
            active = candidates + earlier.found(new, keys, now)
            mine = [t for t in territories if t.product_line in reg.opportunity.product_lines]
            outcome = decide(new, detect_conflicts(new, active), self.policies.of(reg.region), now, mine)
            if outcome.status in ACTIVE:
                earlier.add(replace(new, status=outcome.status), outcome.protected_until, keys)
            decisions.append((outbox, reg, new, outcome, len(active)))
        opened = await store.insert_registrations(
            conn, [self._stored(reg, new, outcome, now) for _, reg, new, outcome, _ in decisions]
        )
        for outbox, reg, _, outcome, found in decisions:
            until = outcome.protected_until
            emit_status(
                outbox,
                registration_id=reg.registration_id,
                partner_id=reg.partner_id,
                status=outcome.status,
                stage="conflict",
                reason_code=outcome.reason_code,
                partner_message=outcome.partner_message,
                manager_detail={**outcome.manager_detail, "region": reg.region},
                protected_until=until,
                customer_name=reg.customer.company_name,
                region=reg.region,
            )
            if reg.registration_id in opened and until is not None:
                emit_opportunity(outbox, reg, until)
            log.info(
                "registration_decided",
                registration_id=str(reg.registration_id),
                status=outcome.status,
                reason_code=outcome.reason_code,
                candidates=found,
            )

    def _stored(self, reg: RegistrationVetted, new: Candidate, outcome: Outcome, now: datetime) -> store.Decided:
        policy = self.policies.of(reg.region)
        until = outcome.protected_until
        opens = outcome.creates_opportunity and until is not None
        return store.Decided(
            registration_id=reg.registration_id,
            partner_id=reg.partner_id,
            customer_key=reg.customer_key,
            registrable_domain=new.domain,
            company_name=reg.customer.company_name,
            name_norm=new.name,
            country=new.country,
            product_lines=reg.opportunity.product_lines,
            region=reg.region,
            status=outcome.status,
            reason_code=outcome.reason_code,
            protected_until=until,
            expiring_from=expiring_from(until, policy) if until else None,
            review_due_at=review_due(now, policy) if outcome.status == Status.UNDER_REVIEW else None,
            decided_at=now,
            decided_by=self.replica,
            data=reg.model_dump(mode="json"),
            opportunity_id=uuid.uuid5(uuid.NAMESPACE_URL, f"dealreg:opportunity:{reg.registration_id}")
            if opens
            else None,
        )

    async def on_registration_vetted(self, conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        await self.on_registrations_vetted(conn, [(incoming, outbox)])


# Postgres settings on each of conflict's connections.
# - Generic plans: the candidates query, planned anew for each registration (its ~20 name keys), cost more to plan
#   than to run: 1.25 ms against 0.33 ms a call with its generic plan, which probes the same indexes.
# - Index paths over sequential scans: a generic plan is made once, when the connection first runs the statement,
#   and kept until Postgres next analyzes the table. Made while `registrations` held a few rows (a fresh deployment;
#   every benchmark run), asking which of a batch's registrations were decided before settled on a sequential scan
#   and read the whole table at every batch: 8.5 ms a batch of 128 on average over a benchmark's first minute,
#   against 0.5 ms by the primary key. The candidates query's young plan still reads every active registration
#   (through a partial index, with no condition) until the first analyze; custom plans would spare that minute at
#   30-40% more time for that statement ever after.
DB_SETTINGS = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off"}


def build_app(settings: ConflictSettings) -> FastStream:
    runtime = ServiceRuntime(
        service=SERVICE,
        settings=settings,
        package="dealreg_conflict",
        db_settings=DB_SETTINGS,
    )
    config = load_section_or_exit(settings.config_file, SERVICE, ConflictConfig, service=SERVICE)
    policies = Policies(config, settings)
    clock = Clock(controllable=settings.controllable_clock)
    replica = f"{socket.gethostname()}:{os.getpid()}"  # which replica decided: for operators and the race test
    managers = ManagerDecisions(policies=policies, clock=clock, regions=parse_regions(settings.regions))

    decider = Decider(policies, clock, replica)

    async def on_registration_decided(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        """Managers' decisions on registrations, and their grants of exclusive territories."""
        if incoming.event.type == EventType.TERRITORY_GRANTED:
            await managers.grant_territory(conn, incoming, outbox)
        elif incoming.event.type == EventType.REGISTRATION_DECIDED:
            await managers.decide(conn, incoming, outbox, create_opportunity)
        else:
            raise PoisonRecord(f"{incoming.event.type} is not a decision conflict takes")

    runtime.subscribe(REGISTRATIONS_VETTED, decider.on_registration_vetted, run_handler=decider.on_registrations_vetted)
    runtime.subscribe(REGISTRATION_DECISIONS, on_registration_decided)
    sweeper = Sweeper(pool=lambda: runtime.pool, service=SERVICE, clock=clock, policies=policies, settings=settings)
    runtime.add_background("sweeper", sweeper.run)
    return runtime.app()
