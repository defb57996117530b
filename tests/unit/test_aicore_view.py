"""The shared per-tenant view: one list serves every reader; local writes outlive older lists."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from embedding_operator.backends.aicore_view import Listing, Shared


@dataclass(frozen=True)
class Item:
    id: str
    owner: str
    state: str = "UNKNOWN"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_readers_share_one_list_per_max_age():
    clock, calls = Clock(), []

    async def fetch() -> list[Item]:
        calls.append(clock.now)
        await asyncio.sleep(0.01)
        return [Item(f"d{i}", f"o{i}") for i in range(1000)]

    listing = Listing(fetch, lambda i: i.owner, clock)
    found = await asyncio.gather(*(listing.owned(f"o{i}", 5) for i in range(1000)))
    assert len(calls) == 1 and all(len(f) == 1 for f in found)
    clock.now = 4.9
    await listing.owned("o1", 5)
    assert len(calls) == 1  # still fresh
    clock.now = 5.0
    await listing.owned("o1", 5)
    assert len(calls) == 2


async def test_a_write_is_not_undone_by_a_list_that_began_before_it():
    clock = Clock()
    remote: list[Item] = []
    gate = asyncio.Event()

    async def fetch() -> list[Item]:
        snapshot = list(remote)
        await gate.wait()
        return snapshot

    listing = Listing(fetch, lambda i: i.owner, clock)
    reading = asyncio.ensure_future(listing.owned("o", 0))
    await asyncio.sleep(0)
    clock.now = 1.0
    created = Item("d1", "o")
    remote.append(created)
    listing.put(created)  # the POST returned while the list was in flight
    gate.set()
    assert await reading == [created]
    # A list that began after the write is the truth again, including a state change.
    remote[0] = Item("d1", "o", "RUNNING")
    clock.now = 2.0
    assert await listing.owned("o", 0) == [Item("d1", "o", "RUNNING")]
    listing.remove("d1")
    assert await listing.owned("o", 10) == []


async def test_shared_value_is_fetched_once_and_failures_reach_every_reader():
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:
            raise RuntimeError("down")
        return "ok"

    shared: Shared[str] = Shared(fetch, Clock())
    results = await asyncio.gather(*(shared.get(5) for _ in range(10)), return_exceptions=True)
    assert calls == 1 and all(isinstance(r, RuntimeError) for r in results)
    assert await shared.get(5) == "ok" and calls == 2


async def test_a_list_outlives_a_cancelled_reader_but_not_the_last_one():
    """Shutdown cancels every reader: the list they shared must stop with them, not go on to
    use a client that clean-up closes next."""
    started, finished = [], []
    gate = asyncio.Event()

    async def fetch() -> list[Item]:
        started.append(1)
        await gate.wait()
        finished.append(1)
        return [Item("d1", "o")]

    listing = Listing(fetch, lambda i: i.owner, Clock())
    first = asyncio.ensure_future(listing.owned("o", 0))
    second = asyncio.ensure_future(listing.owned("o", 0))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    gate.set()
    assert await second == [Item("d1", "o")]  # one reader cancelled: the other still served
    assert len(started) == 1

    gate.clear()
    readers = [asyncio.ensure_future(listing.owned("o", 0)) for _ in range(3)]
    await asyncio.sleep(0.01)
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await asyncio.sleep(0.01)
    gate.set()
    await asyncio.sleep(0.01)
    assert len(started) == 2 and len(finished) == 1  # the abandoned list did not go on
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    # The next reader starts a fresh list instead of joining the cancelled one.
    assert await listing.owned("o", 0) == [Item("d1", "o")]
    assert len(started) == 3
