"""One shared view of AI Core per tenant (service key × resource group), like an informer.

Every EmbeddingModel of a tenant reads its deployments (and, while something is to be made, its
artifacts, configurations and the template) from here instead of asking AI Core itself: one list
of the scenario's deployments serves all objects, so the idle cost per poll interval is that one
list, however many objects there are. A list is made at most once per `max_age` the readers ask
for, and concurrent readers wait for the same request (single flight).

Writes go straight to AI Core and are recorded here at once (`put`/`remove`), so the writer's
next look sees them; a list that began before a write does not undo it (the write is newer).
Items are indexed by their owner's key, so one object's look costs O(its own items), not O(N).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from embedding_operator.aicore import AICoreClient, NotFound
from embedding_operator.aicore.models import Artifact, Configuration, Deployment
from embedding_operator.plan.aicore import Template, owner_prefix

Clock = Callable[[], float]
V = TypeVar("V")


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=_HasId)


class Flight(Generic[V]):
    """One fetch that concurrent readers share, cancelled when its last reader is cancelled.

    NB: a plain `asyncio.shield` kept a list running after every reader had gone (operator
    shutdown cancels them all); it then used an AI Core client already closed by clean-up
    ("Cannot send a request, as the client has been closed") and kopf's end-of-run wait for
    left-over tasks cost 5 s and exit code 1.
    """

    def __init__(self, fetch: Awaitable[V]) -> None:
        self.task: asyncio.Future[V] = asyncio.ensure_future(fetch)
        self._readers = 0
        self._abandoned = False

    @property
    def joinable(self) -> bool:
        """False once done or abandoned: the next reader starts a new fetch."""
        return not (self._abandoned or self.task.done())

    async def join(self) -> V:
        self._readers += 1
        try:
            # NB: shielded so one cancelled reader does not fail the others.
            return await asyncio.shield(self.task)
        finally:
            self._readers -= 1
            if not self._readers and not self.task.done():
                self._abandoned = True
                self.task.cancel()


class Shared(Generic[V]):
    """One value fetched at most once per `max_age`; concurrent callers share the fetch."""

    def __init__(self, fetch: Callable[[], Awaitable[V]], clock: Clock = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._value: V | None = None
        self._fetched_at = float("-inf")
        self._inflight: Flight[V] | None = None

    async def get(self, max_age: float) -> V:
        if self._value is not None and self._clock() - self._fetched_at < max_age:
            return self._value
        if self._inflight is None or not self._inflight.joinable:
            self._inflight = Flight(self._run())
        return await self._inflight.join()

    async def _run(self) -> V:
        started = self._clock()
        value = await self._fetch()
        self._value, self._fetched_at = value, started
        return value

    def invalidate(self) -> None:
        self._fetched_at = float("-inf")


class Listing(Generic[T]):
    """A periodically re-listed collection with local writes on top, indexed by owner key."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[list[T]]],
        key: Callable[[T], str | None],
        clock: Clock = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._key = key
        self._clock = clock
        self._fetched_at = float("-inf")
        self._inflight: Flight[None] | None = None
        self._items: dict[str, T] = {}
        self._index: dict[str, dict[str, T]] = {}
        # id -> (item, or None when deleted; monotonic time of the write)
        self._local: dict[str, tuple[T | None, float]] = {}
        self.lists = 0  # lists made, for tests and the bench

    async def owned(self, key: str, max_age: float) -> list[T]:
        """The items filed under `key`, from a list no older than `max_age` seconds."""
        if self._clock() - self._fetched_at >= max_age:
            if self._inflight is None or not self._inflight.joinable:
                self._inflight = Flight(self._refresh())
            await self._inflight.join()
        return list(self._index.get(key, {}).values())

    async def _refresh(self) -> None:
        started = self._clock()
        fetched = await self._fetch()
        self.lists += 1
        items = {item.id: item for item in fetched}
        for item_id, (item, written) in list(self._local.items()):
            if written < started:
                del self._local[item_id]  # the list saw the write (or its undoing): it wins
            elif item is None:
                items.pop(item_id, None)
            else:
                items[item_id] = item
        self._items = items
        self._index = {}
        for item in items.values():
            self._file(item)
        self._fetched_at = started

    def _file(self, item: T) -> None:
        key = self._key(item)
        if key is not None:
            self._index.setdefault(key, {})[item.id] = item

    def put(self, item: T) -> None:
        old = self._items.get(item.id)
        if old is not None and (key := self._key(old)) is not None:
            self._index.get(key, {}).pop(item.id, None)
        self._items[item.id] = item
        self._file(item)
        self._local[item.id] = (item, self._clock())

    def remove(self, item_id: str) -> None:
        old = self._items.pop(item_id, None)
        if old is not None and (key := self._key(old)) is not None:
            self._index.get(key, {}).pop(item_id, None)
        self._local[item_id] = (None, self._clock())

    def get(self, item_id: str) -> T | None:
        return self._items.get(item_id)

    def invalidate(self) -> None:
        self._fetched_at = float("-inf")


class TenantView:
    """The shared view of one (service key, resource group): per scenario, three listings."""

    def __init__(
        self, client: AICoreClient, resource_group: str, clock: Clock = time.monotonic
    ) -> None:
        self.client = client
        self.resource_group = resource_group
        self._clock = clock
        self._deployments: dict[str, Listing[Deployment]] = {}
        self._artifacts: dict[str, Listing[Artifact]] = {}
        self._configurations: dict[str, Listing[Configuration]] = {}
        self._templates: dict[tuple[str, str], Shared[Template]] = {}

    def deployments(self, scenario_id: str) -> Listing[Deployment]:
        listing = self._deployments.get(scenario_id)
        if listing is None:

            async def fetch() -> list[Deployment]:
                return await self.client.list_deployments(
                    resource_group=self.resource_group, scenario_id=scenario_id
                )

            listing = self._deployments[scenario_id] = Listing(
                fetch, lambda d: owner_prefix(d.configuration_name), self._clock
            )
        return listing

    def artifacts(self, scenario_id: str) -> Listing[Artifact]:
        listing = self._artifacts.get(scenario_id)
        if listing is None:

            async def fetch() -> list[Artifact]:
                return await self.client.find_artifacts(
                    scenario_id, resource_group=self.resource_group
                )

            listing = self._artifacts[scenario_id] = Listing(fetch, lambda a: a.name, self._clock)
        return listing

    def configurations(self, scenario_id: str) -> Listing[Configuration]:
        listing = self._configurations.get(scenario_id)
        if listing is None:

            async def fetch() -> list[Configuration]:
                return await self.client.find_configurations(
                    scenario_id, resource_group=self.resource_group
                )

            listing = self._configurations[scenario_id] = Listing(
                fetch, lambda c: owner_prefix(c.name), self._clock
            )
        return listing

    async def template(self, scenario_id: str, executable_id: str, max_age: float) -> Template:
        shared = self._templates.get((scenario_id, executable_id))
        if shared is None:

            async def fetch() -> Template:
                rg = self.resource_group
                try:
                    await self.client.get_scenario(scenario_id, resource_group=rg)
                except NotFound:
                    return Template(scenario=False, executable=False)
                try:
                    await self.client.get_executable(scenario_id, executable_id, resource_group=rg)
                except NotFound:
                    return Template(scenario=True, executable=False)
                return Template()

            shared = self._templates[(scenario_id, executable_id)] = Shared(fetch, self._clock)
        return await shared.get(max_age)

    def invalidate(self) -> None:
        """Forget every list: the next look asks AI Core again (after IDs turned out stale)."""
        for listings in (self._deployments, self._artifacts, self._configurations):
            for listing in listings.values():
                listing.invalidate()
        for shared in self._templates.values():
            shared.invalidate()
