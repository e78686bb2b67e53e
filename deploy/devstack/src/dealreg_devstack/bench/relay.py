"""One hop of the do-nothing relay: consume, republish unchanged, commit (as the services do, a little after, with
the batches that follow: `DeferredCommits`). No database, no decoding.

python -m dealreg_devstack.bench.relay BOOTSTRAP SOURCE_TOPIC TARGET_TOPIC GROUP
"""

from __future__ import annotations

import asyncio
import signal
import sys

import uvloop
from aiokafka import AIOKafkaConsumer

from dealreg_shared.kafka import DeferredCommits, make_producer
from dealreg_shared.runtime import freeze_startup_heap


async def relay(bootstrap: str, source: str, target: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    producer = make_producer(bootstrap, client_id=f"bench-relay-{group}")
    await consumer.start()
    await producer.start()
    freeze_startup_heap()  # run as the services run (their event loop, their collector settings): a fair ceiling
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    commits = DeferredCommits()
    committing = asyncio.create_task(commits.run())
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=1000)
            records = [r for items in batch.values() for r in items]
            futures = [
                await producer.send(target, value=r.value, key=r.key, headers=list(r.headers or ())) for r in records
            ]
            if futures:
                await asyncio.gather(*futures)  # acks=all, like the services' outbox relay
                commits.applied(consumer, records)
    finally:
        committing.cancel()
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    uvloop.run(relay(*sys.argv[1:5]))
