"""The three layers one session manager routes through, in failover order."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.settings import Settings
from shared.store.firestore.layer import FirestoreLayer
from shared.store.memory import MemoryLayer
from shared.store.redis.layer import RedisLayer


@dataclass(slots=True)
class Layers:
    """Shared by the manager, its recovery and its ending: a layer replaced here (a test
    pointing Firestore at a dead port) is replaced for all three."""

    settings: Settings
    redis: RedisLayer
    firestore: FirestoreLayer
    memory: MemoryLayer
    clock: Callable[[], float] = field(default=time.time)


class OverLayers:
    """For the parts that work on the layers: ``self.redis`` and so on are the current ones."""

    layers: Layers

    @property
    def settings(self) -> Settings:
        return self.layers.settings

    @property
    def redis(self) -> RedisLayer:
        return self.layers.redis

    @redis.setter
    def redis(self, layer: RedisLayer) -> None:
        self.layers.redis = layer

    @property
    def firestore(self) -> FirestoreLayer:
        return self.layers.firestore

    @firestore.setter
    def firestore(self, layer: FirestoreLayer) -> None:
        self.layers.firestore = layer

    @property
    def memory(self) -> MemoryLayer:
        return self.layers.memory

    def _clock(self) -> float:
        return self.layers.clock()
