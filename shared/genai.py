"""The google-genai client the Gemini parts share (the summarizer, the responder, the
embedder): one construction, the Gemini timeout, Vertex AI when GOOGLE_GENAI_USE_VERTEXAI is
set (the SDK reads its environment). google-genai is imported here, on first use only."""

from __future__ import annotations

from typing import Any

from shared.settings import Settings


def new_client(settings: Settings) -> Any:
    from google import genai
    from google.genai import types

    return genai.Client(http_options=types.HttpOptions(timeout=int(settings.gemini_timeout_s * 1000)))
