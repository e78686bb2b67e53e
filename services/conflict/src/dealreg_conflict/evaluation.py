"""`python -m dealreg_conflict.evaluation [pairs.csv]`: precision and recall of name matching on a labelled set."""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

from dealreg_conflict.matching import NAME_MATCH_THRESHOLD, clean_company_name, compare_names

DEFAULT_PAIRS = Path(__file__).resolve().parents[2] / "bench" / "company_pairs.csv"


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: bool
    kind: str


@dataclass(frozen=True)
class Scores:
    true_pos: int
    false_pos: int
    false_neg: int
    true_neg: int

    @property
    def precision(self) -> float:
        return self.true_pos / max(1, self.true_pos + self.false_pos)

    @property
    def recall(self) -> float:
        return self.true_pos / max(1, self.true_pos + self.false_neg)


def load_pairs(path: Path) -> list[Pair]:
    with path.open(encoding="utf-8", newline="") as file:
        return [Pair(r["name_a"], r["name_b"], r["same"] == "1", r["kind"]) for r in csv.DictReader(file)]


def predicted_same(pair: Pair) -> bool:
    return compare_names(clean_company_name(pair.a), clean_company_name(pair.b)).matches


def score(pairs: list[Pair]) -> tuple[Scores, list[Pair], list[Pair]]:
    """The confusion counts, and the pairs wrongly matched and wrongly missed."""
    wrong_match = [p for p in pairs if predicted_same(p) and not p.same]
    missed = [p for p in pairs if p.same and not predicted_same(p)]
    true_pos = sum(1 for p in pairs if p.same) - len(missed)
    true_neg = sum(1 for p in pairs if not p.same) - len(wrong_match)
    return Scores(true_pos, len(wrong_match), len(missed), true_neg), wrong_match, missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pairs", nargs="?", type=Path, default=DEFAULT_PAIRS)
    args = parser.parse_args()
    pairs = load_pairs(args.pairs)
    scores, wrong_match, missed = score(pairs)
    same = sum(1 for p in pairs if p.same)
    print(f"{len(pairs)} labelled pairs ({same} same company, {len(pairs) - same} look-alikes)")
    print(f"threshold {NAME_MATCH_THRESHOLD:.0f}: precision {scores.precision:.3f}, recall {scores.recall:.3f}")
    print(
        f"  true pos {scores.true_pos}, false pos {scores.false_pos}, false neg {scores.false_neg}, "
        f"true neg {scores.true_neg}"
    )
    for label, found in (("wrongly matched", wrong_match), ("missed", missed)):
        for p in found:
            cleaned = f"{clean_company_name(p.a)!r} / {clean_company_name(p.b)!r}"
            result = compare_names(clean_company_name(p.a), clean_company_name(p.b))
            print(f"  {label}: {p.a!r} ~ {p.b!r} ({p.kind}; cleaned {cleaned}, score {result.score:.1f})")


if __name__ == "__main__":
    main()
