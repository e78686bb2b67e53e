"""The topic catalogue: complete, unique, with a .dlq twin per topic, and the only place a topic name is written."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from dealreg_shared import topics
from dealreg_shared.topics import ALL_TOPICS, DLQ_SUFFIX, MAIN_TOPICS, Topic, by_name

ROOT = Path(__file__).parents[2]
CATALOGUE = ROOT / "shared" / "src" / "dealreg_shared" / "topics.py"
TOPIC_NAME = re.compile(r"dealreg\.[a-z.-]+\.v1")

# the design's table of topics
DESIGN_TOPICS = {
    "dealreg.partner-applications.v1": "application_id",
    "dealreg.partner-decisions.v1": "application_id",
    "dealreg.partners.v1": "partner_id",
    "dealreg.registrations.submitted.v1": "partner_id",
    "dealreg.registrations.received.v1": "customer_key",
    "dealreg.registrations.vetted.v1": "customer_key",
    "dealreg.registration-decisions.v1": "registration_id",
    "dealreg.registrations.status.v1": "registration_id",
    "dealreg.opportunities.v1": "customer_key",
}


def test_the_catalogue_holds_exactly_the_designs_topics_with_their_keys() -> None:
    assert {t.name: t.key for t in MAIN_TOPICS} == DESIGN_TOPICS


def test_every_topic_constant_of_the_module_is_in_the_catalogue() -> None:
    constants = {v for v in vars(topics).values() if isinstance(v, Topic)}
    assert constants <= set(MAIN_TOPICS)


@pytest.mark.parametrize("topic", MAIN_TOPICS, ids=lambda t: t.name)
def test_every_topic_has_a_dlq_twin_in_all_topics(topic: Topic) -> None:
    twins = [t for t in ALL_TOPICS if t.name == topic.name + DLQ_SUFFIX]
    assert len(twins) == 1
    assert twins[0].partitions == topic.partitions
    assert topic.key in twins[0].key


def test_all_topics_is_the_main_topics_and_their_dlqs_only() -> None:
    assert len(ALL_TOPICS) == 2 * len(MAIN_TOPICS)
    assert {t.name for t in ALL_TOPICS} == {t.name for t in MAIN_TOPICS} | {t.name + ".dlq" for t in MAIN_TOPICS}


def test_no_dlq_of_a_dlq() -> None:
    assert not any(t.name.endswith(".dlq.dlq") for t in ALL_TOPICS)


def test_topic_names_are_unique() -> None:
    names = [t.name for t in ALL_TOPICS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("topic", ALL_TOPICS, ids=lambda t: t.name)
def test_every_topic_name_matches_the_naming_scheme_and_by_name_finds_it(topic: Topic) -> None:
    assert re.fullmatch(r"dealreg\.[a-z.-]+\.v1(\.dlq)?", topic.name)
    assert by_name(topic.name) == topic
    assert topic.partitions >= 1


def test_by_name_refuses_an_unknown_topic() -> None:
    with pytest.raises(KeyError):
        by_name("dealreg.unknown.v1")


@pytest.mark.parametrize("topic", [t for t in ALL_TOPICS if "registration" in t.name], ids=lambda t: t.name)
def test_registration_topics_have_more_than_one_partition(topic: Topic) -> None:
    assert topic.partitions > 1


def _source_files() -> list[Path]:
    roots = [
        ROOT / "shared" / "src",
        *sorted((ROOT / "services").glob("*/src")),
        ROOT / "deploy" / "devstack" / "src",
        ROOT / "cli" / "src",
    ]
    return sorted(f for root in roots for f in root.rglob("*.py"))


def _topic_literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and TOPIC_NAME.search(node.value)
    ]


def test_the_scan_covers_every_package_and_finds_the_catalogues_names() -> None:
    files = _source_files()
    assert CATALOGUE in files
    for service in ("intake", "vetting", "conflict", "notify"):
        assert any(f"services/{service}/src" in f.as_posix() for f in files), service
    assert any("deploy/devstack/src" in f.as_posix() for f in files)
    assert any("cli/src" in f.as_posix() for f in files)
    found = {TOPIC_NAME.search(value).group(0) for _, value in _topic_literals(CATALOGUE)}  # type: ignore[union-attr]
    assert set(DESIGN_TOPICS) <= found


def test_no_topic_name_is_written_outside_the_catalogue() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {value!r}"
        for path in _source_files()
        if path != CATALOGUE
        for line, value in _topic_literals(path)
    ]
    assert offenders == [], "topic names written outside topics.py:\n" + "\n".join(offenders)
