"""The kb responder on a newcomer's first questions (issue "The first hour", "The sample
assistant"): everyday questions the sample FAQ answers, and a new question that names its
own topic outweighing the earlier turns.

Kept apart from tests/unit/test_responders.py, which is over the house's 400 lines already.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.features.responders.kb import KbResponder, reset_indexes
from shared.settings import Settings
from tests.unit.test_responders import ctx


@pytest.fixture
def kb() -> Iterator[KbResponder]:
    reset_indexes()
    yield KbResponder(None, Settings().kb_min_confidence)
    reset_indexes()


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Where is my order?", "orders-status"),  # was: the cancel-an-order answer at 0.75
        ("Is there a student discount?", "billing-discounts"),  # was: promo-code troubleshooting
        ("Can I return a gift without a receipt?", "returns-gift"),  # was: "I don't know"
    ],
)
def test_an_everyday_question_is_answered_from_its_entry(kb, question, expected):
    answer = kb.answer(question, ctx())

    assert answer.sources == [expected], (answer.sources, answer.confidence)
    assert answer.confidence >= kb.min_confidence


def test_a_new_question_naming_its_topic_outweighs_earlier_turns_on_another(kb):
    # was: the refund answer, the two refund turns outvoting "shipping"
    refunds = ctx("How long does a refund take?", "When will I get my money back?")

    answer = kb.answer("How long does shipping take?", refunds)

    assert answer.sources == ["shipping-times"], answer
    assert answer.collection == "shipping"


def test_the_earlier_turns_still_steer_a_follow_up_that_names_no_topic(kb):
    # The same earlier turns; a follow-up of the question's vague words goes to their topic.
    refunds = ctx("How long does a refund take?", "When will I get my money back?")

    assert kb.answer("and how long does that take?", refunds).sources == ["returns-refund-time"]
