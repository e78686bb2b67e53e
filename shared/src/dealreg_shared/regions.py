"""The country-to-region table (configurable): region policies, routing and partner regions all key on it."""

from __future__ import annotations

import json

DEFAULT_REGION = "default"

DEFAULT_REGIONS: dict[str, tuple[str, ...]] = {
    "amer": ("US", "CA", "MX", "BR", "AR", "CL", "CO", "PE"),
    "emea": (
        "AT",
        "BE",
        "BG",
        "CH",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GB",
        "GR",
        "HR",
        "HU",
        "IE",
        "IL",
        "IS",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "NO",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
        "TR",
        "AE",
        "SA",
        "ZA",
        "EG",
        "NG",
        "KE",
        "MA",
    ),
    "apac": ("AU", "NZ", "JP", "KR", "CN", "HK", "TW", "SG", "MY", "TH", "ID", "PH", "VN", "IN"),
}


def parse_regions(text: str) -> dict[str, str]:
    """`{"emea": ["DE", "GB"], ...}` (JSON) into a country → region map; empty text means the default table."""
    table = json.loads(text) if text.strip() else DEFAULT_REGIONS
    if not isinstance(table, dict):
        raise ValueError("the region table is a JSON object of region → list of ISO country codes")
    mapping: dict[str, str] = {}
    for region, countries in table.items():
        for country in countries:
            if country in mapping:
                raise ValueError(f"country {country} is in two regions: {mapping[country]} and {region}")
            mapping[str(country).upper()] = str(region)
    return mapping


def region_of(country: str, mapping: dict[str, str]) -> str:
    return mapping.get(country.upper(), DEFAULT_REGION)
