"""Normalizing a customer's identity: registrable domains (public-suffix aware) and the customer_key."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    # the list ships inside the package: no network fetch at run time
    return PublicSuffixList()


@lru_cache(maxsize=4096)  # a public-suffix lookup costs more than the rest of a submission's checks together
def registrable_domain(value: str | None) -> str | None:
    """`https://eu.Acme.co.uk/x` → `acme.co.uk`; None when there is no registrable domain in `value`."""
    if not value:
        return None
    text = value.strip().lower()
    if "@" in text and "/" not in text:
        text = text.rsplit("@", 1)[1]
    host = urlsplit(text if "//" in text else "//" + text).hostname or ""
    host = host.rstrip(".")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = host.split(".")
    if labels[-1].isdigit():  # an IP address is no registrable domain
        return None
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return None
    domain: str | None = _psl().privatesuffix(host)
    return domain


def normalize_company_name(name: str) -> str:
    """Lower case, accents and punctuation removed, whitespace folded: a blunt key for names without domain."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    folded = folded.replace("&", " and ")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", folded).split())


def customer_key(domain: str | None, company_name: str, country: str) -> str:
    """The registrable domain, or else `name:<country>:<normalized name>`; it only spreads load."""
    return registrable_domain(domain) or f"name:{country.lower()}:{normalize_company_name(company_name)}"
