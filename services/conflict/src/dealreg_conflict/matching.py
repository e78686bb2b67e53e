"""Is it the same customer: company-name cleaning, fuzzy scoring, and the keys that find and lock candidates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from cleanco.clean import normalized, prepare_default_terms, strip_punct, strip_tail
from rapidfuzz import fuzz

# at or above this score (0-100) two cleaned names in one country are the same company; chosen on the
# labelled set in bench/company_pairs.csv (see the README for its precision and recall)
NAME_MATCH_THRESHOLD = 90.0
# below this many characters a name gets no one-letter-deleted keys: "ibm" would meet every "ib?" acronym
MIN_TYPO_KEY_LENGTH = 5
_EXTRA_WORD_PENALTY = 5.0
_WORD_FLOOR = 80.0

_LEADING_THE = re.compile(r"^(the|der|die|das|le|la|les|el|los)\s+")
# generic words that partners abbreviate; expanding them makes "Intl Mfg" and "International Manufacturing" equal
_ABBREVIATIONS = {
    "intl": "international",
    "int'l": "international",
    "mfg": "manufacturing",
    "svc": "services",
    "svcs": "services",
    "bros": "brothers",
    "natl": "national",
    "assoc": "associates",
    "assocs": "associates",
    "tech": "technology",
    "technologies": "technology",
    "labs": "laboratories",
    "lab": "laboratories",
    "ctr": "center",
    "centre": "center",
    "grp": "group",
    "sys": "systems",
    "mgmt": "management",
    "dept": "department",
    "univ": "university",
    "hldgs": "holdings",
}
# legal forms cleanco leaves when they stand alone or before another one ("Samsung Co., Ltd.")
_LEGAL_TOKENS = frozenset(
    {"co", "company", "corp", "corporation", "inc", "incorporated", "ltd", "limited", "llc", "gmbh", "ag", "kg", "plc"}
)


_LONG_LEGAL_FORMS = frozenset(
    {
        ("aktiengesellschaft",),
        ("aktiebolag",),
        ("kabushiki", "kaisha"),
        ("kk",),
        ("sarl",),
        ("sab", "de", "cv"),
        ("sa", "de", "cv"),
        ("sab", "de"),
        ("sa", "de"),
        ("sab",),
        ("gesellschaft",),
    }
)


def _join_initials(words: list[str]) -> list[str]:
    """Runs of one-letter words are one dotted acronym: `s a p` → `sap`, `i b m` → `ibm`."""
    out: list[str] = []
    run = ""
    for word in [*words, ""]:
        if len(word) == 1:
            run += word
            continue
        if run:
            out.append(run)
            run = ""
        if word:
            out.append(word)
    return out


@lru_cache(maxsize=1)
def _terms() -> list[tuple[int, list[str]]]:
    terms: list[tuple[int, list[str]]] = prepare_default_terms()
    return terms


@lru_cache(maxsize=1)
def _terms_by_end() -> dict[str, list[tuple[int, int, list[str]]]]:
    """cleanco's terms by their last word: (place in cleanco's order, size, words)."""
    by_end: dict[str, list[tuple[int, int, list[str]]]] = {}
    for place, (size, parts) in enumerate(_terms()):
        by_end.setdefault(parts[-1], []).append((place, size, parts))
    return by_end


def strip_legal_suffixes(text: str) -> str:
    """cleanco's `custom_basename(text, terms, suffix=True)`, the same result without its walk through all 321 terms
    (a sixth of conflict's CPU): cleanco tries each term in turn against the end of the name and removes it if it
    matches; only terms ending in the name's current last word can, so only those are tried, in cleanco's order."""
    name = strip_tail(text)
    parts = name.split()
    nparts = [strip_punct(p) for p in normalized(name).split()]
    by_end = _terms_by_end()
    after = 0  # cleanco's walk goes on from the term after the last one removed
    while nparts:
        tried = by_end.get(nparts[-1], ())
        hit = next(((place, size) for place, size, term in tried if place >= after and nparts[-size:] == term), None)
        if hit is None:
            break
        place, size = hit
        del nparts[-size:]
        del parts[-size:]
        after = place + 1
    return str(strip_tail(" ".join(parts)))


def clean_company_name(name: str) -> str:
    """`The Contoso Group GmbH & Co. KG` → `contoso group`: what is left of a name once form is removed.

    Case, accents, punctuation, `&`/`and`, a leading article and legal forms of many countries (cleanco's
    table, applied until nothing more comes off) are ignored; a name that is nothing but a legal form stays.
    """
    text = normalized(name).replace("&", " and ").replace("+", " and ")
    text = re.sub("['\u2019`\u00b4]", "", text)  # McDonald's → mcdonalds, not "mcdonald s"
    previous = None
    while previous != text:
        previous = text
        stripped = strip_legal_suffixes(text).strip(" ,.-")
        text = stripped or text
    words = _join_initials(re.sub(r"[^a-z0-9]+", " ", text).split())
    words = [_ABBREVIATIONS.get(w, w) for w in words if w != "and"]
    while len(words) > 1 and words[-1] in _LEGAL_TOKENS:
        words.pop()
    for size in (3, 2, 1):  # spelled-out or dotted forms cleanco's table lacks or missed ("s a r l")
        while len(words) > size and tuple(words[-size:]) in _LONG_LEGAL_FORMS:
            del words[-size:]
    cleaned = _LEADING_THE.sub("", " ".join(words))
    return cleaned or " ".join(words)


def name_key(cleaned: str) -> str:
    """The cleaned name without spaces: `micro soft` and `microsoft` are one key."""
    return cleaned.replace(" ", "")


def name_score(a: str, b: str) -> float:
    """0-100 similarity of two cleaned names: spacing, word order and small typos barely count; a changed
    word ("deutsche bank" / "deutsche bahn") or an added one ("contoso" / "contoso digital") does.

    Deliberately not a partial or token-set score: `delta` must not equal `delta faucet` because one is
    inside the other (the look-alike case).
    """
    key_a, key_b = name_key(a), name_key(b)
    if not key_a or not key_b:
        return 0.0
    if key_a == key_b:
        return 100.0
    words_a, words_b = a.split(), b.split()
    if len(words_a) != len(words_b):
        # a word more or less, beyond spacing: an extension of the name far more often than a typo
        return max(0.0, fuzz.ratio(key_a, key_b) - _EXTRA_WORD_PENALTY)
    score = max(fuzz.ratio(key_a, key_b), fuzz.token_sort_ratio(a, b))
    return min(score, _weakest_word(words_a, words_b), _weakest_word(words_b, words_a))


def _weakest_word(words: list[str], others: list[str]) -> float:
    """How well the worst-matched word of `words` is found in `others` (a typo scores ~85+, a new word less)."""
    weakest = min(max(fuzz.ratio(w, o) for o in others) for w in words)
    return 100.0 if weakest >= _WORD_FLOOR else weakest


def names_match(a: str, b: str) -> bool:
    return name_score(a, b) >= NAME_MATCH_THRESHOLD


# a decision needs a name's keys several times (its locks, its candidates, the run's matching, the stored keys)
@lru_cache(maxsize=8192)
def name_keys(cleaned: str, country: str) -> frozenset[str]:
    """The blocking keys of a cleaned name in a country: its spaceless form (spacing variants), and its words
    sorted and joined, whole and with any one character deleted (word order, and a typo, a missing or a
    doubled letter: two strings one edit apart share a deletion).

    Stored registrations are found by these keys through an index, whose cost does not grow with how many
    registrations there are; a name only counts as a match when it shares one (see `compare_names`), so two
    names that can match always share a lock too.
    """
    key = name_key(cleaned)
    if not key:
        return frozenset()
    ordered = "".join(sorted(cleaned.split()))
    keys = {f"{country}:k:{key}"}
    if len(ordered) < MIN_TYPO_KEY_LENGTH:
        return frozenset({*keys, f"{country}:k:{ordered}"})
    # the whole form and its deletions share one namespace: "tailspntoys" is both a name and a deletion
    keys.add(f"{country}:d:{ordered}")
    keys.update(f"{country}:d:{ordered[:i]}{ordered[i + 1 :]}" for i in range(len(ordered)))
    return frozenset(keys)


@dataclass(frozen=True)
class NameMatch:
    score: float
    shared_key: bool

    @property
    def matches(self) -> bool:
        return self.shared_key and self.score >= NAME_MATCH_THRESHOLD


def compare_names(a: str, b: str) -> NameMatch:
    return NameMatch(name_score(a, b), bool(name_keys(a, "") & name_keys(b, "")))
