"""The same code on a real three-node Redis Cluster (Memorystore for Redis Cluster)."""

from __future__ import annotations

from tests.store.conftest import make_manager


def test_sessions_spread_over_the_cluster_and_work(redis_cluster, firestore_emulator, uid):
    m = make_manager(redis_cluster.url, redis_cluster=True)
    client = m.redis.client()
    sids = [m.create_session({}, user_id=uid).session_id for _ in range(12)]
    # Random ids over 16,384 slots: two of 12 sessions share a slot about once in 250 runs,
    # which is fine (the old assertion that all slots differ was a flake). What the test
    # needs is sessions on more than one node: all 12 on one of 3 is a 1 in 177,000 chance.
    nodes = {client.get_node_from_key(m.redis.keys(sid)[0]).port for sid in sids}
    assert len(nodes) > 1, "all test sessions landed on one node: the test would not prove anything"
    for sid in sids:
        # every key of one session is in one slot (the hash tag), so one script can touch all
        assert len({client.keyslot(k) for k in m.redis.keys(sid)}) == 1
        for i in range(6):
            m.add_message(sid, "user" if i % 2 == 0 else "assistant", f"m{i}", user_id=uid)
        ctx = m.get_context_for_llm(sid, user_id=uid)
        assert ctx.storage == "redis" and [x.content for x in ctx.messages] == [f"m{i}" for i in range(6)]
        assert ctx.summary is not None and ctx.summary.message_count == 5
    end = m.end_session_with_analytics(sids[0], user_id=uid)
    assert (end.message_count, end.queries_recorded) == (6, 3)
