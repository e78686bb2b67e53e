"""`python -m dealreg_devstack up|down|status|provision|demo`: the local stack behind `make up|down|demo`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from dealreg_devstack import kafka_local, postgres_local
from dealreg_devstack.provision import Stack, provision
from dealreg_devstack.stack import from_environment, local_stack_up, reset_local


async def _up() -> Stack:
    stack = from_environment() or await local_stack_up()
    created = await provision(stack)
    print(f"kafka     {stack.kafka_bootstrap}")
    print(f"postgres  {stack.admin_dealreg_dsn.split('@', 1)[1]}")
    print(f"topics    {len(created)} created" if created else "topics    all present")
    return stack


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dealreg-devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start Kafka and Postgres locally (idempotent), create topics, schemas and roles")
    sub.add_parser("down", help="stop the local Kafka and Postgres (data is kept in .dealreg/)")
    sub.add_parser("status", help="say what runs")
    sub.add_parser("reset", help="stop the local stack and delete its data (the broker jars stay cached)")
    sub.add_parser("provision", help="create topics, schemas and roles on the stack given by the environment")
    demo = sub.add_parser("demo", help="start the stack and the four services, then play the demo scenario")
    demo.add_argument("--keep-running", action="store_true", help="leave the services running afterwards")
    args = parser.parse_args(argv)
    # the readiness polls expect refused connections while the broker starts: not worth a line each
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    if args.command == "up":
        asyncio.run(_up())
    elif args.command == "down":
        stopped_kafka = kafka_local.down()
        stopped_pg = postgres_local.down()
        print(f"kafka     {'stopped' if stopped_kafka else 'was not running'}")
        print(f"postgres  {'stopped' if stopped_pg else 'was not running'}")
    elif args.command == "reset":
        reset_local()
        print("local stack stopped and its data deleted")
    elif args.command == "status":
        print(f"kafka     {'running' if kafka_local.running() else 'stopped'}")
        print(f"postgres  {'running' if postgres_local.running() else 'stopped'}")
    elif args.command == "provision":
        stack = from_environment()
        if stack is None:
            sys.exit("dealreg: set DEALREG_KAFKA_BOOTSTRAP and DEALREG_ADMIN_DATABASE_URL")
        asyncio.run(provision(stack))
    elif args.command == "demo":
        from dealreg_devstack.demo import run_demo

        sys.exit(asyncio.run(run_demo(keep_running=args.keep_running)))


if __name__ == "__main__":
    main()
