"""Firestore: the client wrapper (``client``), the session layer (``layer``), and over the same
wrapper the stats, the reports, the erasure, the sweep's scans and the analytics reads."""
