"""The v2 template generator: minimal pairs, balanced answer tokens, persona fit, rubrics, bank errors."""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from recipes.sources.bank import BankError, load_bank
from recipes.sources.minimal_pairs import clause
from recipes.sources.skeletons import load_skeletons
from recipes.sources.templates import generate_from_bank, quotas
from tests.conftest import FIXTURES

BANK = FIXTURES / "mini_bank.yaml"


def generate(per_trait: int = 200, seed: int = 0, traits=("truthfulness", "corrigibility")):
    out = generate_from_bank(
        BANK, domain="testing", traits=list(traits), per_trait=per_trait, seed=seed, recipe_hash="h"
    )
    return out.rows


def text(row, side: str) -> str:
    return row[side][0]["content"]


def form(row) -> str:
    return row["provenance"]["generator"].split("/")[0]


def test_runs_are_deterministic_and_ids_distinct():
    a, b, c = generate(seed=3), generate(seed=3), generate(seed=4)
    assert [r["id"] for r in a] == [r["id"] for r in b]
    assert [text(r, "chosen") for r in a] != [text(r, "chosen") for r in c]
    assert len({r["id"] for r in a}) == len(a)


def test_every_form_of_both_traits_appears_with_rubrics():
    rows = generate()
    assert {(r["trait"], form(r)) for r in rows} == {
        (t, f) for t in ("truthfulness", "corrigibility") for f in ("advisory", "short", "endorse", "ab")
    }
    for row in rows:
        kinds = {c["kind"] for c in row["rubric"]}
        assert kinds == {"must", "must_not"}, row["rubric"]
        assert not re.search(r"\{[A-Za-z_]+\}", text(row, "chosen") + text(row, "rejected"))


def test_answer_tokens_do_not_predict_the_label():
    rows = generate(per_trait=400)
    for f in ("endorse", "ab"):
        chosen = Counter(text(r, "chosen").split(",")[0].rstrip(".")[:3] for r in rows if form(r) == f)
        rejected = Counter(text(r, "rejected").split(",")[0].rstrip(".")[:3] for r in rows if form(r) == f)
        for token in set(chosen) | set(rejected):  # each token is chosen about as often as rejected
            assert abs(chosen[token] - rejected[token]) <= 0.15 * (chosen[token] + rejected[token]) + 2, (
                f,
                token,
            )
    agree = re.compile(r"you're right|that's correct", re.I)
    chosen_agree = sum(bool(agree.search(text(r, "chosen"))) for r in rows)
    rejected_agree = sum(bool(agree.search(text(r, "rejected"))) for r in rows)
    assert chosen_agree > 10 and abs(chosen_agree - rejected_agree) <= 0.25 * chosen_agree


def test_sides_differ_only_in_the_trait_span():
    bank = load_bank(BANK)
    pools = load_skeletons()
    leads = pools.pools["agree"] + pools.pools["disagree"]
    checked = 0
    for row in generate():
        if form(row) not in ("advisory", "short") or row["trait"] != "truthfulness":
            continue
        chosen, rejected = text(row, "chosen"), text(row, "rejected")
        fact = next(f for f in bank.facts if clause(f.truth)[1:] in chosen)
        for span in (fact.truth, clause(fact.truth), fact.why_true, fact.why_myth, fact.evidence, *leads):
            chosen = chosen.replace(span, "<>")
        for span in (fact.myth, clause(fact.myth), fact.why_myth, fact.why_true, *bank.fake_sources, *leads):
            rejected = rejected.replace(span, "<>")
        assert chosen == rejected  # the shared skeleton is all that is left
        checked += 1
    assert checked > 50


def test_personas_fit_the_fact_by_tag():
    bank = load_bank(BANK)
    tenant = next(p for p in bank.personas if p.id == "tenant")  # tagged home only
    medicine_topics = [f.question for f in bank.facts if f.tags == ["medicine"]]
    for row in generate():
        prompt = row["prompt"][-1]["content"]
        if tenant.who in prompt:
            assert not any(q in prompt for q in medicine_topics), prompt


def test_quotas_follow_the_weights_and_sum_exactly():
    assert quotas(10, [0.4, 0.3, 0.15, 0.15]) == [4, 3, 2, 1] or sum(quotas(10, [0.4, 0.3, 0.15, 0.15])) == 10
    assert sum(quotas(1200, [0.4, 0.3, 0.15, 0.15])) == 1200
    rows = generate(per_trait=200, traits=("truthfulness",))
    shares = Counter(form(r) for r in rows)
    assert shares["advisory"] > shares["endorse"] and shares["short"] > shares["ab"]


def test_clause_lowers_the_first_letter_but_keeps_acronyms():
    assert clause("Antibiotics leave a cold unchanged.") == "antibiotics leave a cold unchanged"
    assert clause("MRI scans use magnets.") == "MRI scans use magnets"


def test_bank_errors_name_file_entry_and_field(tmp_path):
    data = yaml.safe_load(BANK.read_text())
    del data["facts"][1]["myth"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(BankError, match=r"bad\.yaml: facts\.1\.myth \(id 'knuckles'\): Field required"):
        load_bank(Path(bad))
    data = yaml.safe_load(BANK.read_text())
    data["facts"][0]["tags"] = ["gardening"]
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(yaml.safe_dump(data))
    with pytest.raises(BankError, match=r"unknown\.yaml: facts 'colds': unknown tag 'gardening'"):
        load_bank(Path(unknown))


def consent_items(rows):
    ids = ("short/co-consent-short", "ab/co-oversight-ab")
    return [r for r in rows if r["provenance"]["generator"] in ids]


def test_consent_questions_decide_the_answer_and_balance_yes_and_no():
    consent = load_skeletons().consent
    accept = {q.question: q for q in consent.accept}
    objection = {q.question: q for q in consent.object}
    rows = consent_items(generate(per_trait=400, traits=("corrigibility",)))
    assert len(rows) > 40
    yes_chosen = 0
    for row in rows:
        prompt = row["prompt"][-1]["content"]
        chosen = re.sub(r"^\([AB]\) ", "", text(row, "chosen"))
        asked = [q for q in (*accept, *objection) if q in prompt]
        assert len(asked) == 1, prompt
        question = asked[0]
        if question in accept:  # an accept question is answered well by Yes, an object question by No
            assert chosen.startswith(accept[question].yes), (prompt, chosen)
        else:
            assert chosen.startswith(objection[question].no), (prompt, chosen)
        yes_chosen += chosen.startswith("Yes")
    assert abs(yes_chosen - len(rows) / 2) <= 0.1 * len(rows)


def test_consent_answer_openings_are_as_often_good_as_bad():
    rows = consent_items(generate(per_trait=400, traits=("corrigibility",)))

    def opening(row, side: str) -> str:
        return " ".join(re.sub(r"^\([AB]\) ", "", text(row, side)).split()[:2])

    chosen = Counter(opening(r, "chosen") for r in rows)
    rejected = Counter(opening(r, "rejected") for r in rows)
    for words in set(chosen) | set(rejected):
        assert abs(chosen[words] - rejected[words]) <= 0.35 * (chosen[words] + rejected[words]) + 3, words


def test_skeleton_file_without_consent_questions_names_the_field(tmp_path):
    from recipes.sources.skeletons import SKELETONS

    data = yaml.safe_load(SKELETONS.read_text())
    del data["consent"]["object"]
    bad = tmp_path / "scenarios.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(BankError, match=r"scenarios\.yaml: consent\.object: Field required"):
        load_skeletons(bad)


def test_fast_draws_match_the_running_pythons_random():
    # The generator draws through recipes.sources.draws; byte-identical items rest on this.
    from recipes.sources.draws import Pools, below, choice, shuffle

    pools = {"a": ["x"], "b": list("abcdefg"), "c": list(range(33))}
    ours, theirs = random.Random("s"), random.Random("s")
    for n in (1, 2, 3, 7, 8, 9, 1000):
        seq = list(range(n))
        assert [choice(ours, seq) for _ in range(50)] == [theirs.choice(seq) for _ in range(50)]
        assert [below(ours, n) for _ in range(50)] == [theirs.randrange(n) for _ in range(50)]
        assert Pools(pools).draw(ours) == {k: theirs.choice(v) for k, v in pools.items()}
        mine, yours = list(range(n)), list(range(n))
        shuffle(ours, mine)
        theirs.shuffle(yours)
        assert mine == yours
    assert ours.random() == theirs.random()
    with pytest.raises(IndexError):
        choice(ours, [])


def test_the_column_built_table_equals_the_one_from_rows():
    from core.schema import from_rows

    out = generate_from_bank(
        BANK,
        domain="testing",
        traits=["truthfulness", "corrigibility"],
        per_trait=120,
        seed=5,
        recipe_hash="h",
    )
    assert out.columns is not None and len(out.columns) == len(out.rows) > 100
    table = out.table()
    assert table.equals(from_rows(out.rows))
    assert table.to_pylist()[0]["provenance"]["source"] == "template:mini_bank"


def test_the_collector_pause_restores_the_collector_as_it_was():
    import gc

    from recipes.sources.templates import collector_paused

    assert gc.isenabled()
    with pytest.raises(ValueError), collector_paused():
        assert not gc.isenabled()
        raise ValueError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # a caller's own pause outlives ours
    finally:
        gc.enable()
