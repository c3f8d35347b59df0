"""Storage layers, one per file (powertools' persistence/ layout): Redis, Firestore, memory.

The orchestrator that chooses between them is ``shared.session_manager``.
"""
