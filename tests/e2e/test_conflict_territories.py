"""Exclusive territories on the real stack: granted by managers, capped per region, binding other partners."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dealreg_shared.envelope import utcnow
from tests.conftest import unique
from tests.e2e.conflict_checks import decided, partner_view, territory_stored
from tests.e2e.conflict_support import grant_territory, publish_vetted, vetted
from tests.e2e.conftest import Conflict

pytestmark = pytest.mark.e2e


async def test_an_exclusive_territory_rejects_other_partners_and_names_no_one(conflict: Conflict) -> None:
    c = conflict
    holder, line = unique("p-holder-"), unique("line-")
    now = utcnow()
    await grant_territory(
        c.producer,
        unique("t-"),
        holder,
        product_line=line,
        country="NZ",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=100),
    )
    await territory_stored(c, holder)
    other = vetted(
        unique("p-other-"),
        company=f"Kiwi Farms {unique('')}",
        domain=f"{unique('kiwi')}.nz",
        country="NZ",
        product_lines=(line,),
    )
    await publish_vetted(c.producer, other)
    status = await decided(c, other)
    assert (status["status"], status["reason_code"]) == ("rejected", "exclusive_territory")
    assert status["manager_detail"]["territory_partner_id"] == holder
    assert holder not in partner_view(status)
    own = vetted(
        holder, company=f"Kiwi Dairy {unique('')}", domain=f"{unique('dairy')}.nz", country="NZ", product_lines=(line,)
    )
    await publish_vetted(c.producer, own)
    assert (await decided(c, own))["status"] == "approved"
    elsewhere = vetted(
        unique("p-else-"),
        company=f"Aussie {unique('')}",
        domain=f"{unique('au')}.com.au",
        country="AU",
        product_lines=(line,),
    )
    await publish_vetted(c.producer, elsewhere)
    assert (await decided(c, elsewhere))["status"] == "approved"


async def test_a_region_that_reviews_territory_conflicts_holds_the_registration(conflict: Conflict) -> None:
    c = conflict
    holder, line = unique("p-holder-"), unique("line-")
    now = utcnow()
    await grant_territory(
        c.producer,
        unique("t-"),
        holder,
        product_line=line,
        region="held",
        starts_at=now,
        ends_at=now + timedelta(days=30),
    )
    await territory_stored(c, holder)
    reg = vetted(
        unique("p-other-"),
        company=f"Held Co {unique('')}",
        domain=f"{unique('held')}.com",
        region="held",
        product_lines=(line,),
    )
    await publish_vetted(c.producer, reg)
    status = await decided(c, reg)
    assert (status["status"], status["reason_code"]) == ("under_review", None)
    assert status["manager_detail"]["held_for"] == "exclusive_territory"


async def test_a_territory_longer_than_the_regions_exclusivity_cap_is_refused(conflict: Conflict) -> None:
    c = conflict
    territory_id, now = unique("t-"), utcnow()
    await grant_territory(
        c.producer,
        territory_id,
        unique("p-greedy-"),
        product_line="analytics",
        country="FR",
        starts_at=now,
        ends_at=now + timedelta(days=181),
    )

    def found() -> list[dict[str, object]]:
        return [r for r in c.statuses.of_type("decision.refused") if r["subject_id"] == territory_id]

    await c.statuses.wait_for("the grant is refused", found)
    assert "capped at 180 days" in str(found()[0]["reason"])
