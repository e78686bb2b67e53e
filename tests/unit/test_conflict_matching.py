"""Company-name matching: cleaning, scoring, keys, and its precision and recall on the labelled set."""

from __future__ import annotations

import itertools

import pytest
from cleanco.clean import custom_basename, prepare_default_terms
from cleanco.termdata import terms_by_country, terms_by_type

from dealreg_conflict.evaluation import DEFAULT_PAIRS, load_pairs, score
from dealreg_conflict.matching import clean_company_name, compare_names, name_keys, strip_legal_suffixes


@pytest.mark.parametrize(
    ("written", "cleaned"),
    [
        ("Contoso GmbH", "contoso"),
        ("CONTOSO G.m.b.H.", "contoso"),
        ("The Coca-Cola Company", "coca cola"),
        ("Procter & Gamble Co.", "procter gamble"),
        ("Procter and Gamble", "procter gamble"),
        ("Nestlé S.A.", "nestle"),
        ("Straßenbau Weber AG", "strassenbau weber"),
        ("Łódź Logistics Sp. z o.o.", "lodz logistics"),
        ("Samsung Electronics Co., Ltd.", "samsung electronics"),
        ("Müller Maschinenbau GmbH & Co. KG", "muller maschinenbau"),
        ("McDonald's Corporation", "mcdonalds"),
        ("S.A.P. SE", "sap"),
        ("Contoso S.à r.l.", "contoso"),
        ("Northwind Intl Mfg", "northwind international manufacturing"),
    ],
)
def test_cleaning_removes_case_accents_punctuation_articles_and_legal_forms(written: str, cleaned: str) -> None:
    assert clean_company_name(written) == cleaned


def test_a_name_that_is_only_a_legal_form_is_kept() -> None:
    assert clean_company_name("Limited") != ""


TEN_WAYS = [
    "Contoso Pharmaceuticals GmbH",
    "CONTOSO PHARMACEUTICALS",
    "contoso pharmaceuticals gmbh.",
    "The Contoso Pharmaceuticals Company",
    "Contoso-Pharmaceuticals AG",
    "Contoso Pharmaceuticals, Inc.",
    "Contoso Pharmaceutcals",
    "Contoso  Pharmaceuticals Ltd",
    "Cöntoso Pharmaceuticals S.A.",
    "Pharmaceuticals Contoso",
]


def test_the_same_company_written_ten_ways_matches_every_way() -> None:
    for a, b in itertools.combinations(TEN_WAYS, 2):
        assert compare_names(clean_company_name(a), clean_company_name(b)).matches, (a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Delta Air Lines", "Delta Faucet"),
        ("Deutsche Bank", "Deutsche Bahn"),
        ("Contoso", "Contoso Digital"),
        ("Samsung SDI", "Samsung SDS"),
        ("General Motors", "General Mills"),
        ("Apple", "Apple Bank"),
    ],
)
def test_look_alikes_do_not_match(a: str, b: str) -> None:
    assert not compare_names(clean_company_name(a), clean_company_name(b)).matches


def test_names_that_match_always_share_a_key_so_they_share_a_lock() -> None:
    for a, b in itertools.combinations(TEN_WAYS, 2):
        ca, cb = clean_company_name(a), clean_company_name(b)
        assert name_keys(ca, "DE") & name_keys(cb, "DE")


def test_name_keys_are_per_country() -> None:
    assert not name_keys("contoso", "DE") & name_keys("contoso", "AT")


def test_a_name_without_a_shared_key_never_matches_even_with_a_high_score() -> None:
    # two edits in a short name: the score may be high, but no key links them, so no lock would either
    result = compare_names("abcdefgh", "abcdxfgy")
    assert not result.shared_key and not result.matches


def test_the_labelled_set_has_200_pairs_half_same_half_look_alikes_and_scores_at_least_095() -> None:
    pairs = load_pairs(DEFAULT_PAIRS)
    same = sum(1 for p in pairs if p.same)
    assert len(pairs) >= 200 and same == len(pairs) - same
    scores, _, _ = score(pairs)
    assert scores.precision >= 0.95 and scores.recall >= 0.95


def test_stripping_legal_suffixes_is_cleancos_to_the_letter() -> None:
    # our indexed walk replaces cleanco's custom_basename on the hot path; any name where they differ is a bug
    pairs = load_pairs(DEFAULT_PAIRS)
    labelled = {name for pair in pairs for name in (pair.a, pair.b)}
    forms = sorted({t for table in (terms_by_type, terms_by_country) for terms in table.values() for t in terms})
    edge = ["", " ", "Ltd", "Co Co Ltd", "x Ltd Ltd Ltd", "Limited Company Limited", "...", "ACME\u00a0Ltd.", "AB AB"]
    names = [
        *labelled,
        *edge,
        *forms,
        *(f"Acme {form}" for form in forms),
        *(f"Acme {a} {b}" for a in forms for b in forms[::7]),
    ]
    terms = prepare_default_terms()
    differ = [n for n in names if strip_legal_suffixes(n) != custom_basename(n, terms, suffix=True)]
    assert len(names) > 15_000
    assert differ == []
