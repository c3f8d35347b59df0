"""The knowledge base file: its format, its validation and the sample shipped with the package.

A KB file is one JSON object::

    {
      "unknown_answer": "What to say when no entry fits (optional; a default is used)",
      "entries": [
        {"id": "returns-window", "collection": "returns",
         "title": "How long do I have to return an item?",
         "questions": ["What is your return policy?"],       (optional)
         "answer": "You can return ..."}
      ]
    }

Pure Python (json + pydantic): validating a deployment's file needs no numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.errors import ChatMemoryError

SAMPLE_KB_PATH = Path(__file__).resolve().parent / "data" / "faq.json"
MAX_ID_BYTES = 256  # a KB id becomes part of a Firestore document id (the KB-usage counters)

DEFAULT_UNKNOWN_ANSWER = (
    "I don't know the answer to that, and I'd rather not guess. "
    "Please contact our support team and a person will help you."
)


class KnowledgeBaseError(ChatMemoryError):
    """The KB file is missing, not JSON, or has a bad entry (the message names it)."""

    code = "knowledge_base_invalid"


class KbEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str = Field(min_length=1)
    collection: str = Field(min_length=1, max_length=128)
    title: str = Field(min_length=1)
    # Other ways customers ask the same thing: BM25 matches words, so this is where an FAQ's
    # author teaches it synonyms ("package" for "parcel", "2FA").
    questions: tuple[str, ...] = ()
    answer: str = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id_size(cls, value: str) -> str:
        size = len(value.encode("utf-8"))
        if size > MAX_ID_BYTES:
            raise ValueError(f"must be 1-{MAX_ID_BYTES} bytes of UTF-8, got {size}")
        return value


class _KbFile(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    unknown_answer: str = Field(DEFAULT_UNKNOWN_ANSWER, min_length=1)
    entries: list[Any] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class KnowledgeBase:
    path: str
    entries: tuple[KbEntry, ...]
    unknown_answer: str


def _describe(index: int, raw: Any) -> str:
    rid = raw.get("id") if isinstance(raw, dict) else None
    return f"entry #{index}" + (f" (id {rid!r})" if isinstance(rid, str) else "")


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}" for e in exc.errors())


def parse_knowledge_base(data: Any, path: str) -> KnowledgeBase:
    """Validate a decoded KB document; the error names the file and the first bad entry."""
    try:
        doc = _KbFile.model_validate(data)
    except ValidationError as exc:
        raise KnowledgeBaseError(f"knowledge base {path}: {_problems(exc)}") from exc
    entries: list[KbEntry] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(doc.entries):
        try:
            entry = KbEntry.model_validate(raw)
        except ValidationError as exc:
            raise KnowledgeBaseError(f"knowledge base {path}: {_describe(index, raw)}: {_problems(exc)}") from exc
        if entry.id in seen:
            raise KnowledgeBaseError(
                f"knowledge base {path}: entry #{index} (id {entry.id!r}): "
                f"duplicate id, already used by entry #{seen[entry.id]}"
            )
        seen[entry.id] = index
        entries.append(entry)
    return KnowledgeBase(path=path, entries=tuple(entries), unknown_answer=doc.unknown_answer)


def load_knowledge_base(path: str | Path | None = None) -> KnowledgeBase:
    """Read and validate a KB file (None: the sample shipped with the package)."""
    source = Path(path) if path else SAMPLE_KB_PATH
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KnowledgeBaseError(f"knowledge base {source}: cannot read it ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KnowledgeBaseError(f"knowledge base {source}: not UTF-8 JSON ({exc})") from exc
    return parse_knowledge_base(data, str(source))
