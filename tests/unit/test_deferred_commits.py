"""Deferred offset commits when committing fails: what was applied is tried again with the next, never dropped while
the consumer runs, and forgotten once it has stopped (the real broker's side: tests/integration/test_offset_commits)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka import TopicPartition
from aiokafka.errors import RebalanceInProgressError

from dealreg_shared.kafka import DeferredCommits

TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)


@dataclass
class Record:
    topic: str
    partition: int
    offset: int


@dataclass(eq=False)  # hashable by identity, as aiokafka's consumer is
class Consumer:
    """aiokafka's consumer as DeferredCommits uses it: its assignment, commit and stop."""

    held: set[TopicPartition] = field(default_factory=lambda: {TP0, TP1})
    refuse: int = 0  # commits to refuse first, as during a rebalance
    committed: list[dict[TopicPartition, int]] = field(default_factory=list)
    stopped: bool = False

    def assignment(self) -> set[TopicPartition]:
        return set() if self.stopped else self.held

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.refuse:
            self.refuse -= 1
            raise RebalanceInProgressError
        self.committed.append(dict(offsets))

    async def stop(self) -> None:
        self.stopped = True


async def test_offsets_a_refused_commit_held_go_with_the_next_one() -> None:
    commits, consumer = DeferredCommits(), Consumer(refuse=1)
    commits.applied(consumer, [Record("t", 0, 4), Record("t", 1, 9)])  # type: ignore[arg-type]
    await commits.commit(consumer)  # type: ignore[arg-type]
    assert consumer.committed == []
    commits.applied(consumer, [Record("t", 0, 5)])  # type: ignore[arg-type]
    await commits.commit(consumer)  # type: ignore[arg-type]
    assert consumer.committed == [{TP0: 6, TP1: 10}]


async def test_a_partition_no_longer_held_is_left_to_its_new_owner() -> None:
    commits, consumer = DeferredCommits(), Consumer()
    commits.applied(consumer, [Record("t", 0, 4), Record("t", 1, 9)])  # type: ignore[arg-type]
    consumer.held = {TP1}  # a rebalance gave partition 0 to another replica, which reads on from its last commit
    await commits.commit(consumer)  # type: ignore[arg-type]
    assert consumer.committed == [{TP1: 10}]


async def test_a_consumer_commits_as_it_stops_and_is_forgotten_then() -> None:
    commits, consumer = DeferredCommits(), Consumer()
    commits.applied(consumer, [Record("t", 1, 2)])  # type: ignore[arg-type]
    await consumer.stop()  # the service stopping: FastStream stops its consumers
    assert consumer.stopped and consumer.committed == [{TP1: 3}]
    await commits.commit(consumer)  # a periodic commit that had it in hand: nothing, and nothing kept for it
    assert consumer.committed == [{TP1: 3}] and consumer not in commits._applied  # type: ignore[comparison-overlap]
