"""Two conflict replicas racing near-duplicate registrations of one customer: exactly one winner, every time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
import pytest

from dealreg_shared.contracts import RegistrationVetted
from dealreg_shared.topics import REGISTRATIONS_VETTED
from tests.conftest import unique
from tests.e2e.conflict_checks import conflict_statuses, opportunities_of
from tests.e2e.conflict_support import publish_vetted, vetted
from tests.e2e.conftest import Conflict

pytestmark = pytest.mark.e2e

ROUNDS = 30
# partitions 0 and the last belong to two different members of the group whatever the assignor and however
# many conflict processes there are (two or more): the two sides of a round go to two different replicas
LEFT, RIGHT = 0, REGISTRATIONS_VETTED.partitions - 1


def near_duplicates(round_no: int) -> tuple[RegistrationVetted, RegistrationVetted]:
    """The same customer written two ways, by two partners; the kind of match varies by round."""
    u = unique("")
    a, b = unique("p-left-"), unique("p-right-")
    kinds: list[Callable[[], tuple[RegistrationVetted, RegistrationVetted]]] = [
        lambda: (  # names only: the customer keys differ, only the fuzzy name match links them
            vetted(a, company=f"Contoso {u} Pharmaceuticals GmbH", country="DE"),
            vetted(b, company=f"CONTOSO {u} PHARMACEUTCALS", country="DE"),
        ),
        lambda: (  # one domain written two ways
            vetted(a, company=f"Northwind {u}", domain=f"https://www.northwind{u}.co.uk/", country="GB"),
            vetted(b, company=f"Northwind {u} Traders", domain=f"sales.NORTHWIND{u}.co.uk", country="GB"),
        ),
        lambda: (  # a domain on one side, the same company's name without one on the other
            vetted(a, company=f"The {u} Trading Company", domain=f"{u}trading.com", country="US"),
            vetted(b, company=f"{u} Trading Co., Ltd.", country="US"),
        ),
    ]
    return kinds[round_no % len(kinds)]()


async def decided_by(c: Conflict, regs: list[RegistrationVetted]) -> dict[str, str]:
    conn = await asyncpg.connect(c.stack.admin_dealreg_dsn)
    try:
        rows = await conn.fetch(
            "select registration_id::text as id, decided_by from conflict.registrations "
            "where registration_id = any($1::uuid[])",
            [r.registration_id for r in regs],
        )
        return {r["id"]: r["decided_by"] for r in rows}
    finally:
        await conn.close()


async def both_sides_on_two_replicas(c: Conflict, timeout_s: float = 60) -> None:
    """Until the group has settled (a replica that joined late takes partitions over by a rebalance), a
    warm-up pair on the two sides' partitions may be decided by one process: send pairs until it is not."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        warm = [vetted(unique("p-warm-"), company=f"Warm {unique('')}") for _ in (LEFT, RIGHT)]
        await publish_vetted(c.producer, warm[0], partition=LEFT)
        await publish_vetted(c.producer, warm[1], partition=RIGHT)
        await c.statuses.wait_for(
            "warm-up decided", lambda pair=warm: all(conflict_statuses(c, w.registration_id) for w in pair)
        )
        if len(set((await decided_by(c, warm)).values())) == 2:
            return
        assert asyncio.get_running_loop().time() < deadline, "the two partitions never went to two replicas"
        await asyncio.sleep(0.5)  # poll interval between probes (the deadline above bounds the loop)


async def test_near_duplicates_raced_on_two_replicas_always_yield_exactly_one_winner(conflict: Conflict) -> None:
    c = conflict
    await both_sides_on_two_replicas(c)
    rounds = [near_duplicates(i) for i in range(ROUNDS)]
    # all at once: each replica works through its own partition, so round i's two sides meet at the same time
    await asyncio.gather(
        *(publish_vetted(c.producer, left, partition=LEFT) for left, _ in rounds),
        *(publish_vetted(c.producer, right, partition=RIGHT) for _, right in rounds),
    )
    everyone = [r for pair in rounds for r in pair]
    await c.statuses.wait_for(
        "every raced registration decided",
        lambda: all(conflict_statuses(c, r.registration_id) for r in everyone),
        timeout_s=120,
    )
    by = await decided_by(c, everyone)
    for i, (left, right) in enumerate(rounds):
        outcomes = sorted(
            (
                conflict_statuses(c, r.registration_id)[0]["status"],
                conflict_statuses(c, r.registration_id)[0]["reason_code"],
            )
            for r in (left, right)
        )
        assert outcomes == [("approved", None), ("rejected", "registered_by_another_partner")], f"round {i}: {outcomes}"
        assert by[str(left.registration_id)] != by[str(right.registration_id)], f"round {i} ran on one replica"
    winners = [r for r in everyone if conflict_statuses(c, r.registration_id)[0]["status"] == "approved"]
    await c.opportunities.wait_for(
        "the winners' opportunities", lambda: all(opportunities_of(c, w.registration_id) for w in winners)
    )
    assert all(len(opportunities_of(c, r.registration_id)) == (1 if r in winners else 0) for r in everyone)
