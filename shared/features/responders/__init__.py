"""Responders: given the user's message and the session's context, the assistant's answer.

`build_responder(settings)` picks one by RESPONDER. Each responder is one module of this
package exposing `build(settings) -> Responder`; adding one is a module and a line in
`_MODULES` (and its name in `Settings.responder`). Importing this package imports no
retrieval or LLM library: a responder's module loads its own when it first answers.
"""

from __future__ import annotations

import importlib

from shared.features.responders.base import Answer, Responder
from shared.settings import Settings

__all__ = ["Answer", "Responder", "build_responder"]

_MODULES: dict[str, str] = {
    "kb": "shared.features.responders.kb",
    "gemini": "shared.features.responders.gemini",
}


def build_responder(settings: Settings) -> Responder:
    """The responder named by `settings.responder`. Cheap: no index or client is built yet."""
    try:
        module = _MODULES[settings.responder]
    except KeyError:
        raise ValueError(f"unknown responder {settings.responder!r}; known: {sorted(_MODULES)}") from None
    responder: Responder = importlib.import_module(module).build(settings)
    return responder
