"""Finding a stack to run against: addresses from the environment, else testcontainers, else the local stack."""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import ExitStack
from typing import Any

from dealreg_devstack import kafka_local, postgres_local
from dealreg_devstack.provision import Stack, provision


def from_environment() -> Stack | None:
    bootstrap = os.environ.get("DEALREG_KAFKA_BOOTSTRAP")
    admin = os.environ.get("DEALREG_ADMIN_DATABASE_URL")
    if bootstrap and admin:
        return Stack(bootstrap, admin)
    return None


def docker_answers() -> bool:
    if os.environ.get("DEALREG_NO_TESTCONTAINERS") == "1" or shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def start_testcontainers(exit_stack: ExitStack) -> Stack:
    """Kafka (KRaft) and Postgres 15 in throwaway containers, stopped when `exit_stack` closes."""
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    kafka: Any = exit_stack.enter_context(
        KafkaContainer("confluentinc/cp-kafka:7.9.0").with_kraft().with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
    )
    pg: Any = exit_stack.enter_context(
        PostgresContainer("postgres:15", username="dealreg_admin", password="dealreg", dbname="postgres", driver=None)
    )
    host = pg.get_container_host_ip()
    admin_dsn = f"postgresql://dealreg_admin:dealreg@{host}:{pg.get_exposed_port(5432)}/postgres"
    return Stack(kafka.get_bootstrap_server(), admin_dsn)


def reset_local() -> None:
    """Stop the local stack and delete its data (topics, databases); the cached broker jars stay."""
    kafka_local.down()
    postgres_local.down()
    shutil.rmtree(kafka_local.layout().data, ignore_errors=True)
    shutil.rmtree(postgres_local.layout().data, ignore_errors=True)


async def local_stack_up() -> Stack:
    admin_dsn = await postgres_local.up()
    bootstrap = await kafka_local.up()
    return Stack(bootstrap, admin_dsn)


async def resolve(exit_stack: ExitStack) -> tuple[Stack, str]:
    """A provisioned stack and how it was found (`environment`, `testcontainers` or `local`)."""
    stack = from_environment()
    how = "environment"
    if stack is None and docker_answers():
        stack, how = start_testcontainers(exit_stack), "testcontainers"
    if stack is None:
        stack, how = await local_stack_up(), "local"
    await provision(stack)
    return stack, how
