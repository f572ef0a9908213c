"""The offline generator: skeleton pools x a v2 domain bank → minimal pairs in four forms.

See ``recipes/banks/README.md``. Each trait's ``per_trait`` items are shared out over the
forms by the skeleton file's ``weights`` and, within a form, evenly over its skeletons.
A skeleton's items walk its records round-robin (every fact or situation is used before
any is used twice), each with a persona that shares a tag with the record, a user variant
and a polarity; polarities rotate so every form holds as many "Yes" as "No" answers and
as many good (A) as good (B). A run is deterministic for its seed.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import product
from pathlib import Path
from typing import Any

from core.schema import user_item_id
from recipes.sources.bank import Bank, BankError, Fact, Oversight, load_bank
from recipes.sources.columns import TemplateColumns
from recipes.sources.draws import choice, shuffle
from recipes.sources.items import SourceOutput, make_item, prompt_messages
from recipes.sources.minimal_pairs import Filler, polarities
from recipes.sources.skeletons import FORMS, SKELETONS, Skeleton, SkeletonFile, load_skeletons

__all__ = ["BankError", "generate_from_bank", "load_bank", "quotas"]


def generate_from_bank(
    bank_path: Path,
    *,
    domain: str,
    traits: list[str],
    per_trait: int,
    seed: int,
    recipe_hash: str,
    on_item: Callable[[int], None] | None = None,
    skeleton_path: Path = SKELETONS,
) -> SourceOutput:
    bank = load_bank(bank_path)
    pools = load_skeletons(skeleton_path)
    source = f"template:{bank_path.stem}"
    columns = TemplateColumns(
        domain=domain, source=source, seed=seed, recipe_hash=recipe_hash, label_source="contrastive"
    )
    out = SourceOutput(columns=columns)
    fill = Filler(pools, domain)
    with collector_paused():
        for trait in traits:
            plan = _plan(pools, bank, trait, per_trait, skeleton_path)
            short = 0  # a small bank runs out of distinct answer-token items first: the advisory
            for skeleton, quota in reversed(plan):  # forms (personas x variants) come last, take the rest
                rows = _items(skeleton, quota + short, bank, fill, columns)
                short = quota + short - len(rows)
                out.rows.extend(rows)
                if on_item:
                    on_item(len(rows))
    out.rows_read = len(out.rows)
    return out


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block (then restore it as it was).

    A run keeps ~13 dicts and lists per item (row, messages, provenance, rubric) and frees
    the others it makes as it goes; none is in a reference cycle, so the collector frees
    nothing, yet its passes over the growing heap took ~30% of generation at 100k items.
    What the block leaves is looked at by the collector's next pass, once."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _plan(
    pools: SkeletonFile, bank: Bank, trait: str, per_trait: int, path: Path
) -> list[tuple[Skeleton, int]]:
    """(skeleton, quota) for one trait: the total split by form weight, then evenly per skeleton."""
    usable = [s for s in pools.skeletons if s.trait == trait and _records(bank, s)]
    if not usable:
        raise BankError(f"{path}: no skeleton for trait {trait!r} that bank {bank.domain!r} can fill")
    weights = pools.weights.get(trait, {})
    forms = [f for f in FORMS if weights.get(f, 0) > 0 and any(s.form == f for s in usable)]
    if not forms:
        raise BankError(f"{path}: weights: no form with weight > 0 for trait {trait!r}")
    plan = []
    for form, form_quota in zip(forms, quotas(per_trait, [weights[f] for f in forms]), strict=True):
        members = [s for s in usable if s.form == form]
        plan += list(zip(members, quotas(form_quota, [s.weight for s in members]), strict=True))
    return plan


def quotas(total: int, weights: list[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders), summing exactly."""
    scale = sum(weights)
    raw = [total * w / scale for w in weights]
    out = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (out[i] - raw[i], i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def _records(bank: Bank, skeleton: Skeleton) -> list[Fact] | list[Oversight]:
    return bank.facts if skeleton.pool == "fact" else bank.oversight


def _uses_persona(skeleton: Skeleton) -> bool:
    return any(s in text for text in skeleton.user for s in ("{who}", "{Who}", "{stakes}", "{Stakes}"))


def _combos(
    skeleton: Skeleton, bank: Bank, rng: random.Random, fill: Filler
) -> Iterator[tuple[Fact | Oversight, dict[str, str], int, int]]:
    """(record, persona slots, user variant, polarity), records round-robin, polarity rotating per record.

    The persona comes as its slots overlaid with the record's (:meth:`Filler.cast`)."""
    records = list(_records(bank, skeleton))
    shuffle(rng, records)
    n_pol = polarities(skeleton)
    every_persona = _uses_persona(skeleton)
    users = range(len(skeleton.user))
    options: list[list[list[tuple[dict[str, str], int]]]] = []
    for record in records:
        cast = fill.cast(bank, record)
        people = cast if every_persona else [choice(rng, cast)]
        groups = []
        for _ in range(n_pol):
            group = list(product(people, users))
            shuffle(rng, group)
            groups.append(group)
        options.append(groups)
    rounds = max((len(g) for groups in options for g in groups), default=0) * n_pol
    for round_ in range(rounds):
        for j, record in enumerate(records):
            polarity = (round_ + j) % n_pol
            group = options[j][polarity]
            if group:
                slots, user = group.pop()
                yield record, slots, user, polarity


def _items(
    skeleton: Skeleton,
    quota: int,
    bank: Bank,
    fill: Filler,
    columns: TemplateColumns,
) -> list[dict[str, Any]]:
    """Up to ``quota`` distinct items of one skeleton, as dicts and appended to ``columns``."""
    domain, seed, recipe_hash = fill.domain, columns.provenance["seed"], columns.provenance["recipe_hash"]
    rng = random.Random(f"{seed}:{domain}:{skeleton.id}")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    prompts: set[str] = set()
    source, generator, trait = columns.provenance["source"], skeleton.generator, skeleton.trait
    for record, slots, user, polarity in _combos(skeleton, bank, rng, fill):
        if len(rows) >= quota:
            break
        draft = fill.draft(skeleton, record, slots, user, polarity, rng, choice(rng, bank.fake_sources))
        # The id hashes the prompt alone: a prompt seen verbatim is a repeat (a third of the
        # candidates at 100k), known without hashing it. Drafted all the same: the draws it
        # takes keep the random stream, and so every later item, as it was.
        if draft.prompt in prompts:
            continue
        prompts.add(draft.prompt)
        # Two prompts apart only in case or spacing share an id: the second is a repeat too.
        ident = user_item_id(draft.prompt, domain, trait)
        if ident in seen:
            continue
        seen.add(ident)
        pair = draft.pair()
        item = make_item(
            prompt=prompt_messages(pair.prompt),
            chosen=pair.chosen,
            rejected=pair.rejected,
            domain=domain,
            trait=trait,
            label_source="contrastive",
            provenance={
                "source": source,
                "source_row": None,
                "generator": generator,
                "violation": skeleton.violation,
                "group": f"{domain}/{record.id}",
                "seed": seed,
                "recipe_hash": recipe_hash,
            },
            id=ident,
        )
        item["rubric"] = pair.rubric
        rows.append(item)
        columns.add(
            pair.rubric,
            id=ident,
            trait=trait,
            prompt=pair.prompt,
            chosen=pair.chosen,
            rejected=pair.rejected,
            generator=generator,
            violation=skeleton.violation,
            group=item["provenance"]["group"],
        )
    return rows
