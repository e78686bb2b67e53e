"""Golden samples the tests share: the design's own examples, value for value."""

from __future__ import annotations

from typing import Any

# the design's sample registration.submitted
DESIGN_REGISTRATION: dict[str, Any] = {
    "registration_id": "6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20",
    "partner_id": "p-northwind",
    "submitted_at": "2026-11-23T10:15:00Z",
    "customer": {
        "company_name": "Contoso GmbH",
        "domain": "contoso.de",
        "country": "DE",
        "contact": {"name": "Jana Weber", "email": "jana.weber@contoso.de"},
    },
    "opportunity": {
        "product_lines": ["analytics"],
        "estimated_value": {"amount": "48000.00", "currency": "EUR"},
        "expected_close_date": "2027-02-28",
        "description": "Analytics rollout for 3 plants",
    },
}
