"""chat-memory: layered session memory (Redis -> Firestore -> per-instance memory).

Nothing here does I/O at import time: the Firebase CLI imports the functions' entry
module to discover them, and a cold ``get_context`` served from Redis must not pay
for firebase-admin or the Firestore client.
"""
