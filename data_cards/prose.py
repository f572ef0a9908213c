"""The card's prose: one function per section, each skipped when its facts are absent."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import polars as pl

from data_cards import prose_quality
from data_cards.audit_section import audit_section
from data_cards.license import source_name
from data_cards.markdown import n as _n
from data_cards.markdown import table as _table

if TYPE_CHECKING:
    from data_cards.facts import CardFacts

# Works we know how to cite, matched on a source's file name.
KNOWN_WORKS = {
    "TruthfulQA.csv": (
        "TruthfulQA (Lin, Hilton and Evans, 2021)",
        "@inproceedings{lin2022truthfulqa,\n"
        "  title={TruthfulQA: Measuring How Models Mimic Human Falsehoods},\n"
        "  author={Lin, Stephanie and Hilton, Jacob and Evans, Owain},\n  booktitle={ACL},\n  year={2022}\n}",
    ),
    "corrigible-neutral-HHH.jsonl": (
        "Model-Written Evaluations, corrigibility set (Perez et al., 2022)",
        "@article{perez2022discovering,\n  title={Discovering Language Model Behaviors with Model-Written "
        "Evaluations},\n  author={Perez, Ethan and others},\n  journal={arXiv preprint arXiv:2212.09251},\n"
        "  year={2022}\n}",
    ),
}


def render(facts: CardFacts) -> str:
    sections: list[Callable[[CardFacts], str | None]] = [
        _intro,
        _teaches,
        _composition,
        _funnel,
        _labels,
        prose_quality.rubrics,
        _annotation,
        _decontamination,
        _models,
        prose_quality.surface,
        lambda f: audit_section(f.manifest),
        _uses,
        _limitations,
        _lineage,
        _loading,
        _reproduce,
        _citation,
    ]
    return "\n".join(text for section in sections if (text := section(facts)))


def _intro(f: CardFacts) -> str:
    m = f.manifest
    rows = ", ".join(f"{s}: {_n(n)}" for s, n in m.rows.items()) or "no rows"
    figure = f"\n![curation funnel and domain x trait counts]({f.figure})\n" if f.figure else ""
    return (
        f"# {f.dataset} {f.version}\n\n"
        f"Preference pairs (`prompt`, `chosen`, `rejected`) that teach **{', '.join(f.traits)}** in "
        f"**{', '.join(f.domains)}**, built by traitdose from recipe "
        f"`{m.recipe or '?'}` (hash `{m.recipe_hash or '-'}`, seed {'-' if m.seed is None else m.seed}). "
        f"Created {m.created or '?'}. Rows: {rows}.\n{figure}"
    )


def _teaches(f: CardFacts) -> str:
    defined = f.trait_definitions
    lines = [f"- **{t}**: {defined.get(t, '(no definition recorded)')}" for t in f.traits]
    return (
        "## What this dataset teaches\n\nIn every pair the `chosen` response exhibits the trait and the "
        "`rejected` response violates it; nothing else is meant to separate them.\n\n"
        + "\n".join(lines)
        + "\n"
    )


def _composition(f: CardFacts) -> str:
    if f.counts.is_empty():
        return "## Domains and traits\n\nThis version holds no accepted items.\n"
    pivot = (
        f.counts.group_by("domain", "trait")
        .agg(pl.col("n").sum())
        .pivot(on="trait", index="domain", values="n", sort_columns=True)
        .fill_null(0)
        .sort("domain")
    )
    traits = [c for c in pivot.columns if c != "domain"]
    rows = [
        [r["domain"], *(_n(r[t]) for t in traits), _n(sum(r[t] for t in traits))] for r in pivot.to_dicts()
    ]
    splits = f.counts.group_by("split").agg(pl.col("n").sum()).sort("split")
    split_line = ", ".join(f"{s}: {_n(n)}" for s, n in splits.iter_rows())
    return (
        "## Domains and traits\n\nAccepted items per domain and trait (all splits; "
        f"{split_line}).\n\n" + _table(["domain", *traits, "total"], rows)
    )


def _funnel(f: CardFacts) -> str | None:
    steps = f.manifest.funnel
    if not steps:
        return None
    rows = [
        [
            s["stage"],
            _n(s["in"]),
            _n(s["out"]),
            ", ".join(f"{k}: {_n(v)}" for k, v in (s.get("dropped") or {}).items()) or "-",
        ]
        for s in steps
    ]
    side = f.manifest.side_rows
    notes = []
    if side.get("dropped"):
        notes.append(
            f"{_n(side['dropped'])} dropped items are kept beside the data (`dropped.parquet`), with why."
        )
    if side.get("routed"):
        notes.append(
            f"{_n(side['routed'])} ambiguous items were routed to human annotation and are not in the splits."
        )
    return (
        "## Curation funnel\n\nItems entering and leaving each stage, and why items were dropped.\n\n"
        + _table(["stage", "in", "out", "dropped (reason: count)"], rows)
        + ("\n" + " ".join(notes) + "\n" if notes else "")
    )


_LABEL_MEANING = {
    "gold": "from a source's answer key",
    "contrastive": "built from a trait-exhibiting vs a trait-violating generation",
    "judge": "ordered by an LLM judge",
    "human": "labelled by human annotators",
}


def _labels(f: CardFacts) -> str | None:
    if not f.label_sources:
        return None
    total = sum(f.label_sources.values()) or 1
    rows = [
        [s, _LABEL_MEANING.get(s, "-"), _n(n), f"{n / total:.0%}"] for s, n in sorted(f.label_sources.items())
    ]
    return "## Label sources\n\n" + _table(["label source", "meaning", "items", "share"], rows)


def _annotation(f: CardFacts) -> str | None:
    a = f.manifest.annotation
    if not a:
        return "## Annotation\n\nNo item in this version has been through human annotation.\n"
    kappas = a.get("cohen_kappa") or {}
    kappa = "; ".join(f"{pair}: {_score(k)}" for pair, k in kappas.items()) or "-"
    text = (
        "## Annotation\n\n"
        f"{_n(a.get('items', 0))} items were labelled by {a.get('annotators', '?')} annotators. "
        f"Agreement: Krippendorff's alpha {_score(a.get('krippendorff_alpha'))}; "
        f"Cohen's kappa per annotator pair: {kappa}. "
        f"Resolved: {_n(a.get('resolved', 0))}, unresolved: {_n(a.get('unresolved', 0))}, "
        f"both responses bad: {_n(a.get('both_bad', 0))}"
        + (f", ties: {_n(a['ties'])}" if "ties" in a else "")
        + ".\n"
    )
    if f.manifest.get("annotator_notes") == "dropped":
        text += (
            "Annotators are named by pseudonymous ids (annotator-1, …) and their free-text notes "
            "were removed from this upload.\n"
        )
    else:
        text += (
            "The `annotation` column holds each annotator's name and any free-text note they wrote; "
            "`traitdose publish --drop-annotator-notes` uploads pseudonymous ids and no notes instead.\n"
        )
    audit = a.get("audit")
    if audit:
        low, high = (audit.get("ci95") or [None, None])[:2]
        text += (
            f"\nAn audit of {_n(audit.get('items', 0))} resolved items agreed with "
            f"{_n(audit.get('agreed', 0))}: "
            f"accuracy {_score(audit.get('accuracy'))} (95% CI {_score(low)}–{_score(high)}).\n"
        )
    return text


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _decontamination(f: CardFacts) -> str:
    reports = [b for s in f.manifest.funnel for b in ((s.get("report") or {}).get("benchmarks") or [])]
    if not reports:
        return (
            "## Decontamination\n\nThis version was not checked against evaluation benchmarks; "
            "check for overlap before evaluating on a benchmark that may share its sources.\n"
        )
    rows = [[b["name"], _n(b.get("checked", 0)), _n(b.get("removed", 0))] for b in reports]
    examples = [
        f"- `{e.get('id', '?')}` ({b['name']}): “{str(e.get('span', ''))[:120]}”"
        for b in reports
        for e in (b.get("examples") or [])[:3]
    ]
    return (
        "## Decontamination\n\nItems overlapping an evaluation benchmark were removed.\n\n"
        + _table(["benchmark", "items checked", "items removed"], rows)
        + ("\nExamples of removed overlaps:\n\n" + "\n".join(examples) + "\n" if examples else "")
    )


def _models(f: CardFacts) -> str:
    llm = f.manifest.llm
    if not llm:
        return (
            "## Models used\n\nNo language model wrote or judged these items: they come from "
            f"{_source_phrase(f)} ({f.generators} distinct generator{'s' * (f.generators != 1)}).\n"
        )
    lines = [f"- generator: `{llm.get('model', '?')}`"]
    if llm.get("judge_model"):
        lines.append(f"- judge: `{llm['judge_model']}`")
    usage = llm.get("usage") or {}
    if usage:
        lines.append(
            "- usage: " + ", ".join(f"{k}: {_n(v) if isinstance(v, int) else v}" for k, v in usage.items())
        )
    return "## Models used\n\n" + "\n".join(lines) + "\n"


def _source_phrase(f: CardFacts) -> str:
    names = [source_name(s) for s in f.manifest.sources]
    return ", ".join(names) or "the recipe's sources"


def _uses(f: CardFacts) -> str:
    return (
        "## Intended use\n\n"
        "A small *dose* of preference or RL training data, mixed into post-training (DPO, IPO, reward "
        "modelling, or graded RL with the rubrics) to strengthen "
        f"{', '.join(f.traits)}. A few percent of the training mix is the intended share; the `test` split "
        "measures whether the model prefers the trait-exhibiting response.\n\n"
        "## Out-of-scope use\n\n"
        "- Not a source of facts: the responses are teaching examples, not "
        f"{' or '.join(d for d in f.domains if d) or 'domain'} advice, and no professional reviewed them.\n"
        "- Not a benchmark of the trait in general: it covers the listed domains and violation kinds only.\n"
        "- Not for training a model to produce the `rejected` responses (falsehoods, resisting oversight).\n"
    )


def _limitations(f: CardFacts) -> str:
    lines = [
        "- **English only.**",
        f"- **Narrow coverage**: {len(f.domains)} domain(s) and {len(f.traits)} trait(s); "
        "a model may not generalise the trait beyond them.",
    ]
    kinds = {s.get("kind") for s in f.manifest.sources}
    if "template" in kinds:
        lines.append(
            f"- **Template artefacts**: items combine {f.generators} hand-written scenario templates with "
            "slot "
            "values; recurring phrasings can be learned in place of the trait. Check the surface statistics."
        )
    if kinds & {"answer_key", "ab_eval"}:
        lines.append(
            "- **Inherited bias**: pairs built from a public evaluation set inherit its authors' choice of "
            "questions and of what counts as correct (largely US-centred for TruthfulQA)."
        )
    if f.manifest.llm:
        lines.append(
            "- **Model-written text**: generated responses carry the generating model's style and errors."
        )
    if f.warnings:
        lines.append(f"- **Surface artefacts**: {len(f.warnings)} surface warning(s) above.")
    if f.license.undeclared:
        lines.append(
            f"- **Undeclared license**: {', '.join(f.license.undeclared)} declares no license; "
            "the dataset's terms are unknown until it does."
        )
    return "## Known limitations and biases\n\n" + "\n".join(lines) + "\n"


def _lineage(f: CardFacts) -> str:
    m = f.manifest
    if f.lineage is None:
        return f"## Version lineage\n\n`{f.dataset}@{f.version}`: {f.lineage_note}.\n"
    d = f.lineage
    return (
        f"## Version lineage\n\nParent: `{m.parent}`. Changes from the parent "
        f"(`traitdose versions diff "
        f"{d['from']} {d['to']}`): {_n(d['added'])} added, {_n(d['removed'])} removed, "
        f"{_n(d['changed'])} changed items.\n"
    )


def _loading(f: CardFacts) -> str:
    repo = f.repo_id or f"ORG/{f.dataset}"
    revision = f', revision="{f.version}"' if f.version else ""
    return (
        "## How to use\n\n```python\nfrom datasets import load_dataset\n\n"
        f'ds = load_dataset("{repo}"{revision})\n'
        'pairs = ds["train"].select_columns(["prompt", "chosen", "rejected"])\n```\n\n'
        "The columns are in TRL's conversational preference format, so they feed `DPOTrainer` directly:\n\n"
        "```python\nfrom trl import DPOConfig, DPOTrainer\n\n"
        'trainer = DPOTrainer(model=model, args=DPOConfig(output_dir="dose", beta=0.1),\n'
        "                     train_dataset=pairs, processing_class=tokenizer)\ntrainer.train()\n```\n"
    )


def _reproduce(f: CardFacts) -> str:
    m = f.manifest
    return (
        "## Reproduce and audit\n\n"
        f"`recipe.yaml` (the resolved recipe, hash `{m.recipe_hash or '-'}`) and `manifest.json` "
        "(funnel, file checksums, parent) sit beside this card. Rebuild with "
        f"`traitdose run recipe.yaml --seed {m.seed or 0}`.\n"
    )


def _citation(f: CardFacts) -> str:
    rows, bibtex = [], []
    sources = f.manifest.sources
    # license.sources lists the manifest's sources in order, then the recipe's own text.
    for i, lic in enumerate(f.license.sources):
        kind = sources[i].get("kind", "-") if i < len(sources) else "recipe"
        work = KNOWN_WORKS.get(lic.name)
        rows.append([work[0] if work else lic.name, kind, lic.license])
        if work:
            bibtex.append(work[1])
    license_line = f"This dataset is released under **{f.license.license}**"
    if f.license.license_name:
        license_line += f" ({f.license.license_name})"
    return (
        "## Sources, attribution and license\n\n"
        + (_table(["source", "kind", "license"], rows) if rows else "")
        + f"\n{license_line}, derived from the licenses of its sources; keep the attributions above when "
        "you redistribute it.\n"
        + ("\nCite the sources:\n\n```bibtex\n" + "\n\n".join(bibtex) + "\n```\n" if bibtex else "")
    )
