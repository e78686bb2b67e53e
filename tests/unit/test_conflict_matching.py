"""Company-name matching: cleaning, scoring, keys, and its precision and recall on the labelled set."""

from __future__ import annotations

import itertools

import pytest

from dealreg_conflict.evaluation import DEFAULT_PAIRS, load_pairs, score
from dealreg_conflict.matching import clean_company_name, compare_names, name_keys


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
