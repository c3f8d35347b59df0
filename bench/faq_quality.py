"""Answer quality of the `kb` responder on a held-out set (section faq of `make bench`).

Run: .venv/bin/python -m bench.faq_quality [--kb PATH] [--heldout PATH] [--json] [--misses]

The held-out set (bench/data/faq_heldout.json) holds customer questions the FAQ was not
written from, each labelled with the entry that answers it, short conversations (earlier user
messages, then a new question), and off-topic questions nothing in the FAQ answers. Counts,
one run, no timing: accuracy@1 (the best-ranked entry is the expected one, whatever its
confidence), what the responder does with it at the threshold (answered right, answered from
another entry, "I don't know"), and the share of off-topic questions answered "I don't know".
Deterministic: the same FAQ and set always give the same figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.core.models import Context, Message  # noqa: E402
from shared.features.responders.kb import KbResponder, reset_indexes  # noqa: E402
from shared.settings import Settings  # noqa: E402

HELDOUT_PATH = ROOT / "bench" / "data" / "faq_heldout.json"


@dataclass(frozen=True, slots=True)
class Case:
    question: str
    expect: str | None  # None: off-topic, "I don't know" is right
    context: tuple[str, ...] = ()


def load_heldout(path: str | Path = HELDOUT_PATH) -> dict[str, list[Case]]:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    return {
        "questions": [Case(c["q"], c["expect"]) for c in doc["questions"]],
        "conversations": [Case(c["q"], c["expect"], tuple(c["context"])) for c in doc["conversations"]],
        "off_topic": [Case(q, None) for q in doc["off_topic"]],
    }


def context_of(user_messages: tuple[str, ...]) -> Context:
    messages = [Message(seq=i, role="user", content=t, timestamp=0.0) for i, t in enumerate(user_messages)]
    formatted = "\n".join(f"User: {t}" for t in user_messages)
    return Context(session_id="bench", messages=messages, summary=None, formatted_context=formatted, storage="redis")


def _ratio(n: int, total: int) -> float | None:
    return round(n / total, 3) if total else None


def score_on_topic(kb: KbResponder, cases: list[Case]) -> dict[str, Any]:
    top1 = right = wrong = unknown = 0
    misses: list[dict[str, Any]] = []
    for case in cases:
        found = kb.retrieve(case.question, context_of(case.context))
        answer = kb.answer_from(found)
        best = found.best.entry.id if found.best else None
        top1 += best == case.expect
        if not answer.sources:
            unknown += 1
        elif answer.sources == [case.expect]:
            right += 1
        else:
            wrong += 1
        if best != case.expect or answer.sources != [case.expect]:
            got = answer.sources[:1] or None
            misses.append(
                {
                    "q": case.question,
                    "expect": case.expect,
                    "top1": best,
                    "answered": got,
                    "confidence": found.confidence,
                }
            )
    n = len(cases)
    return {
        "n": n,
        "top1": top1,
        "accuracy_at_1": _ratio(top1, n),
        "answered_right": right,
        "answered_wrong": wrong,
        "i_dont_know": unknown,
        "answered_right_share": _ratio(right, n),
        "answered_wrong_share": _ratio(wrong, n),
        "misses": misses,
    }


def score_off_topic(kb: KbResponder, cases: list[Case]) -> dict[str, Any]:
    answered = []
    for case in cases:
        answer = kb.answer(case.question, context_of(case.context))
        if answer.sources:
            answered.append({"q": case.question, "answered": answer.sources[0], "confidence": answer.confidence})
    n = len(cases)
    return {"n": n, "i_dont_know": n - len(answered), "i_dont_know_share": _ratio(n - len(answered), n),
            "answered": answered}  # fmt: skip


def evaluate(kb_path: str | None = None, heldout: str | Path = HELDOUT_PATH) -> dict[str, Any]:
    """The figures for one FAQ (None: the shipped sample) on one held-out set."""
    reset_indexes()
    kb = KbResponder(kb_path, Settings().kb_min_confidence)
    sets = load_heldout(heldout)
    return {
        "kb": kb.index().kb.path,
        "entries": len(kb.index().kb.entries),
        "min_confidence": kb.min_confidence,
        "heldout": str(Path(heldout).resolve().relative_to(ROOT)) if Path(heldout).resolve().is_relative_to(ROOT)
        else str(heldout),
        "questions": score_on_topic(kb, sets["questions"]),
        "conversations": score_on_topic(kb, sets["conversations"]),
        "off_topic": score_off_topic(kb, sets["off_topic"]),
    }  # fmt: skip


def section_faq() -> dict[str, Any]:
    out = evaluate()
    out["how"] = (
        f"kb responder on the sample FAQ ({out['entries']} entries), threshold {out['min_confidence']}, "
        f"on {out['heldout']}: paraphrases the FAQ was not written from, conversations, off-topic questions"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", default=None, help="FAQ file (default: the shipped sample)")
    ap.add_argument("--heldout", default=str(HELDOUT_PATH), help="held-out set")
    ap.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    ap.add_argument("--misses", action="store_true", help="also list the questions not answered from their entry")
    args = ap.parse_args(argv)
    out = evaluate(args.kb, args.heldout)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        from bench.report import _faq

        print(_faq(out))
        if args.misses:
            for name in ("questions", "conversations"):
                for m in out[name]["misses"]:
                    got = m["answered"][0] if m["answered"] else "I don't know"
                    print(f"- {m['q']!r}: {m['expect']}; first {m['top1']}; answered {got} ({m['confidence']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
