"""Where bytes live: the layer protocol and records (``base``), the circuit breaker
(``breaker``), what every layer can store (``storable``), this instance's memory
(``memory``), and one package per backend: ``redis`` and ``firestore``. The orchestrator
that chooses between them is ``shared.core.manager``.
"""
