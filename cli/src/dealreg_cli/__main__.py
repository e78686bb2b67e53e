"""`dealreg`: the command line for channel managers and operators.

Exit codes: 0 done, 1 nothing matched (unknown registration, empty selection), 2 usage or unreachable stack.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import uuid
from typing import Any

from dealreg_cli import commands
from dealreg_cli.output import emit
from dealreg_shared.settings import DEFAULT_KAFKA_BOOTSTRAP


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--bootstrap", default=os.environ.get("DEALREG_KAFKA_BOOTSTRAP", DEFAULT_KAFKA_BOOTSTRAP))
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = argparse.ArgumentParser(prog="dealreg", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "pending", parents=[common], help="what waits for a manager: reviews, applications, expiring protections"
    )
    decide = sub.add_parser("decide", parents=[common], help="publish a manager's decision")
    decide.add_argument("subject", choices=["registration", "application"])
    decide.add_argument("id", type=uuid.UUID)
    decide.add_argument("decision", choices=["approve", "reject", "extend"])
    decide.add_argument("--manager", required=True, help="who decides (recorded with the decision)")
    decide.add_argument("--reason", default="")
    decide.add_argument("--days", type=int, help="extend: how many days")
    decide.add_argument("--tier", help="application approve: the partner's tier")
    history = sub.add_parser(
        "history", parents=[common], help="one registration's whole history across the four stages"
    )
    history.add_argument("registration_id")
    dlq = sub.add_parser("dlq", help="dead letters: list them, or replay chosen ones after a fix")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_list = dlq_sub.add_parser("list", parents=[common], help="why each record failed and where it came from")
    dlq_list.add_argument("topic", help="a topic of the catalogue (its .dlq is read)")
    dlq_replay = dlq_sub.add_parser("replay", parents=[common], help="publish dead letters to their source topic again")
    dlq_replay.add_argument("topic")
    which = dlq_replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--record", action="append", metavar="PARTITION:OFFSET", help="repeatable")
    which.add_argument("--all", action="store_true")
    sub.add_parser("status", parents=[common], help="topics, consumer lag per service, dead letters")
    return parser


async def _run(args: argparse.Namespace) -> int:
    b, as_json = args.bootstrap, args.json
    rows: list[dict[str, Any]]
    if args.command == "pending":
        rows = await commands.pending(b)
        emit(rows, ["kind", "id", "partner", "customer", "since", "until"], as_json=as_json, empty="nothing waits")
    elif args.command == "decide":
        if args.subject == "registration":
            if args.decision == "extend" and not args.days:
                print("dealreg: extend needs --days", file=sys.stderr)
                return 2
            decision_id = await commands.decide_registration(
                b, args.id, args.decision, manager=args.manager, reason=args.reason, extend_days=args.days
            )
        else:
            if args.decision == "extend":
                print("dealreg: an application is approved or rejected", file=sys.stderr)
                return 2
            decision_id = await commands.decide_application(
                b, args.id, args.decision, manager=args.manager, reason=args.reason, tier=args.tier
            )
        rows = [{"decision_id": decision_id, "subject": args.subject, "id": str(args.id), "decision": args.decision}]
        emit(rows, ["decision_id", "subject", "id", "decision"], as_json=as_json, empty="")
    elif args.command == "history":
        rows = await commands.history(b, args.registration_id)
        emit(rows, ["time", "event", "detail", "source", "topic"], as_json=as_json, empty="no such registration")
        return 0 if rows else 1
    elif args.command == "dlq" and args.dlq_command == "list":
        rows = await commands.dead_letters(b, args.topic)
        emit(
            rows,
            ["partition", "offset", "failed_at", "consumer", "event", "source", "error"],
            as_json=as_json,
            empty="no dead letters",
        )
    elif args.command == "dlq":
        selected = None if args.all else {_partition_offset(text) for text in args.record}
        rows = await commands.replay(b, args.topic, selected)
        emit(rows, ["partition", "offset", "event", "to"], as_json=as_json, empty="nothing replayed")
        return 0 if rows else 1
    else:
        rows = await commands.status(b)
        emit(rows, ["topic", "partitions", "records", "lag", "dead_letters"], as_json=as_json, empty="")
    return 0


def _partition_offset(text: str) -> tuple[int, int]:
    partition, _, offset = text.partition(":")
    return int(partition), int(offset)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)  # aiokafka's connection chatter is not for this audience
    try:
        code = asyncio.run(_run(args))
    except BrokenPipeError:  # `dealreg ... | head`: the reader had enough
        sys.stderr.close()
        code = 0
    except KeyError as exc:
        print(f"dealreg: unknown topic {exc}", file=sys.stderr)
        code = 2
    except (LookupError, ValueError) as exc:
        print(f"dealreg: {exc}", file=sys.stderr)
        code = 2
    except (OSError, TimeoutError) as exc:
        print(f"dealreg: cannot reach Kafka at {args.bootstrap}: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
