"""Firestore: the client wrapper, the session layer, stats, reports, rollups and erasure."""
