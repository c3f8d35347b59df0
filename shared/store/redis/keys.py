"""Every Redis key name of the product, and every field of a session's state hash the
Python code names, in one place: the layer, the rate limiter, the bench and the tests all
name keys through ``Keys`` and fields through ``Meta`` (as redis/agent-memory-server's
``utils/keys.py``). Nobody types a key format by hand.

Every key carries a {hash tag}: a session's keys share its id's slot, a user's keys their
uid's, so each Lua script's keys live on one Redis Cluster node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str

    def session(self, sid: str) -> list[str]:
        """A session's three keys: the state hash (``meta``), the log of every message (the
        window, the summarizer's input and the end's question/answer pairs are all read from
        it: each message is held once) and the rolling summary (``sum``)."""
        return [self.meta(sid), self.log(sid), self.summary(sid)]

    def meta(self, sid: str) -> str:
        """The session's state hash (its fields: ``Meta``)."""
        return f"{self.prefix}:{{{sid}}}:meta"

    def log(self, sid: str) -> str:
        """Every message of the session, in order (JSON, one entry each)."""
        return f"{self.prefix}:{{{sid}}}:log"

    def summary(self, sid: str) -> str:
        """The session's rolling summary (JSON)."""
        return f"{self.prefix}:{{{sid}}}:sum"

    def recall(self, sid: str) -> str:
        """The session's recalled memories (JSON), written when a user message is taken and
        read with the context (read.lua)."""
        return f"{self.prefix}:{{{sid}}}:recall"

    def corpus(self, sid: str) -> str:
        """The user's memories as the session's recall ranks them (JSON): read from Firestore
        once per conversation."""
        return f"{self.prefix}:{{{sid}}}:corpus"

    def with_memory(self, sid: str) -> list[str]:
        """The session's keys and its memory caches (erase.lua, finish_end.lua delete them all)."""
        return [*self.session(sid), self.recall(sid), self.corpus(sid)]

    def memory_generation(self, uid: str) -> str:
        """A counter raised whenever one of the user's memories is deleted: a cached corpus
        or recall made before the deletion is not used after it."""
        return f"{self.prefix}:user:{{{uid}}}:memgen"

    def user_sessions(self, uid: str) -> str:
        """The user's active sessions (a sorted set by creation time): the per-user cap."""
        return f"{self.prefix}:user:{{{uid}}}:sessions"

    def rate_limit(self, uid: str) -> str:
        """The user's (or client IP's) log of recent requests: the rate limiter's window."""
        return f"{self.prefix}:rl:{{{uid}}}"


class Meta:
    """The fields of a session's state hash (``Keys.meta``) that the Python code names.

    The scripts (``lua/*.lua``) name these too, and the hash's own bookkeeping, which only
    they read and write: 'sc' (the last message the stored summary covers), 'lb' (the
    session's byte ledger), 'an' (its answer count) and one ``MESSAGE_ID`` field per
    message ('m:<id>' -> its number, '!' appended if its append claimed a summary), which
    makes appends exactly once for the session's whole life.
    """

    OWNER: Final = "owner"
    STATUS: Final = "status"
    SEQ: Final = "seq"
    CREATED_AT: Final = "created_at"
    LAST_ACTIVE_AT: Final = "last_active_at"
    USER_INFO: Final = "user_info"
    FS_DOC: Final = "fs_doc"  # '0' while the session has no Firestore document
    END_RESULT: Final = "end_result"
    END_TOKEN: Final = "end_token"
    ENDING_SINCE: Final = "ending_since"
    ERASED_AT: Final = "erased_at"
    LAYOUT: Final = "v"  # '2': see create.lua
    MEMORY: Final = "memory"  # '0': a memory-off session (absent: memory on)
    MESSAGE_ID: Final = "m:"  # the prefix of a message id's field


# The session's own fields, as ``RedisLayer.meta`` and an end's snapshot read them.
META_FIELDS: Final = (
    Meta.OWNER,
    Meta.STATUS,
    Meta.SEQ,
    Meta.CREATED_AT,
    Meta.LAST_ACTIVE_AT,
    Meta.USER_INFO,
    Meta.FS_DOC,
    Meta.END_RESULT,
    Meta.END_TOKEN,
    Meta.ENDING_SINCE,
    Meta.ERASED_AT,
    Meta.MEMORY,
)
# What an ended session's state hash keeps (finish_end.lua): enough to answer its owner.
ENDED_FIELDS: Final = (
    Meta.OWNER,
    Meta.SEQ,
    Meta.CREATED_AT,
    Meta.LAST_ACTIVE_AT,
    Meta.USER_INFO,
    Meta.FS_DOC,
    Meta.LAYOUT,
)
