"""The local embedder and the rank fusion: pure functions."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from shared.features.embeddings import EMBEDDING_DIMENSIONS, RRF_K, LocalEmbedder, fuse

REPO = Path(__file__).resolve().parents[2]


def cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_local_vectors_are_unit_length_of_the_index_dimension():
    (v,) = LocalEmbedder().embed(["When will my parcel to Lisbon arrive?"], "document")
    assert len(v) == EMBEDDING_DIMENSIONS
    assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-9)
    assert LocalEmbedder().embed([""], "query")[0] == [0.0] * EMBEDDING_DIMENSIONS  # nothing to hash: no NaN


def test_the_vector_index_has_the_embedders_dimension():
    indexes = json.loads((REPO / "firestore.indexes.json").read_text())["indexes"]
    vector = [i for i in indexes if i["collectionGroup"] == "memories"]
    assert [f["vectorConfig"]["dimension"] for i in vector for f in i["fields"]] == [EMBEDDING_DIMENSIONS]


def test_local_vectors_are_the_same_in_every_process():
    code = (
        "from shared.features.embeddings import LocalEmbedder as E; print(E().embed(['kettle café'], 'query')[0][:50])"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env=os.environ | {"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1


def test_related_texts_are_nearer_than_unrelated_ones():
    e = LocalEmbedder()
    doc, near, far = e.embed(
        ["When will my parcel to Lisbon arrive?", "is my parcell to Lisbonn late", "I forgot my password"], "document"
    )
    assert cos(doc, near) > 0.3
    assert cos(doc, far) < 0.2  # they share one trigram (" pa")


def test_fusion_is_reciprocal_rank():
    got = fuse([["a", "b", "c"], ["b", "d"]], 3)
    assert got[0] == ("b", 1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert [k for k, _ in got] == ["b", "a", "d"]  # a (rank 1 once) before d (rank 2 once)
    assert fuse([[], []], 3) == []
