"""Routed items reach the queue: every version's ``routed`` side table, once.

Every annotate command syncs first, so a ``traitdose run`` that routes items needs no
extra step; the web server syncs again now and then, so a run that routes items while it
is up reaches annotators without a restart.
"""

from __future__ import annotations

from annotation.queue import DEFAULT_K, Queue
from core.store import Store, Version


def sync_routed(queue: Queue, store: Store, dataset: str, *, k: int | None = None) -> int:
    """Queue the routed items of every version not yet synced; returns items added.

    ``k`` defaults to the recipe's ``annotation.k`` recorded in the manifest, else 2.
    """
    done = queue.synced_versions()
    added = 0
    for version in store.versions(dataset):
        if version.ref in done:
            continue
        routed = version.side("routed")
        item_k = k or _manifest_k(version)
        n = queue.add_items(routed, kind="routed", source=version.ref, k=item_k) if routed.num_rows else 0
        queue.mark_synced(version.ref, n)
        added += n
    return added


def _manifest_k(version: Version) -> int:
    return version.manifest.annotation_k or DEFAULT_K
