"""The stack's set-up, the same for the local stack, testcontainers and compose: topics, database, roles."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg

from dealreg_shared.kafka import ensure_topics
from dealreg_shared.settings import DATABASE_NAME
from dealreg_shared.topics import ALL_TOPICS

SERVICES = ("intake", "vetting", "conflict", "notify")


def role_of(service: str) -> str:
    return f"dealreg_{service}"


def password_of(service: str) -> str:
    """DEALREG_<SERVICE>_DB_PASSWORD, by default the role's name (fine on loopback, override anywhere else)."""
    return os.environ.get(f"DEALREG_{service.upper()}_DB_PASSWORD", role_of(service))


def with_credentials(dsn: str, *, user: str, password: str, database: str) -> str:
    parts = urlsplit(dsn)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"  # IPv6
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, "/" + database, parts.query, ""))


def on_database(dsn: str, database: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(dsn)
    return with_credentials(
        dsn, user=unquote(parts.username or ""), password=unquote(parts.password or ""), database=database
    )


@dataclass(frozen=True)
class Stack:
    """Addresses of a running stack, as seen by the operator (admin) and by each service."""

    kafka_bootstrap: str
    admin_dsn: str  # a superuser's DSN on any database of the server

    @property
    def admin_dealreg_dsn(self) -> str:
        return on_database(self.admin_dsn, DATABASE_NAME)

    def service_dsn(self, service: str) -> str:
        return with_credentials(
            self.admin_dsn, user=role_of(service), password=password_of(service), database=DATABASE_NAME
        )


async def provision_database(admin_dsn: str) -> None:
    """Database `dealreg`; per service a schema it owns and a login role that can touch nothing else."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        # two set-ups at once (replicas, parallel test runs) must not both try to create the database
        await conn.execute("select pg_advisory_lock(hashtext('dealreg.provision.database'))")
        if not await conn.fetchval("select true from pg_database where datname = $1", DATABASE_NAME):
            await conn.execute(f"create database {DATABASE_NAME}")
    finally:
        await conn.close()  # releases the lock
    conn = await asyncpg.connect(on_database(admin_dsn, DATABASE_NAME))
    try:
        await conn.execute("select pg_advisory_lock(hashtext('dealreg.provision'))")
        await conn.execute(f"revoke all on database {DATABASE_NAME} from public")
        await conn.execute("revoke all on schema public from public")
        for service in SERVICES:
            role = role_of(service)
            exists = await conn.fetchval("select true from pg_roles where rolname = $1", role)
            verb = "alter" if exists else "create"
            password = password_of(service).replace("'", "''")
            await conn.execute(
                f"{verb} role {role} login nosuperuser nocreatedb nocreaterole noinherit password '{password}'"
            )
            await conn.execute(f"grant connect on database {DATABASE_NAME} to {role}")
            await conn.execute(f"create schema if not exists {service} authorization {role}")
            await conn.execute(f"revoke all on schema {service} from public")
            await conn.execute(f"alter role {role} in database {DATABASE_NAME} set search_path = {service}")
    finally:  # closing releases the advisory lock
        await conn.close()


async def provision(stack: Stack, *, replication: int = 1) -> list[str]:
    """Idempotent: safe to run on every start and from several places at once. Returns topics created."""
    await provision_database(stack.admin_dsn)
    return await ensure_topics(stack.kafka_bootstrap, ALL_TOPICS, replication=replication)
