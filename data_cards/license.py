"""The dataset's license, derived from the licenses of the sources it was built from.

Each source in the manifest carries an SPDX-style id (a recipe field); the template
banks are the project's own work and so Apache-2.0. The derived license is the most
restrictive one that every source allows; combinations no single license can satisfy
(two different share-alike licenses, share-alike with non-commercial, no-derivatives)
are an error that names the sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import RecipeError

PROJECT_LICENSE = "apache-2.0"  # the template banks are the project's own work
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Terms:
    rank: int  # higher = more obligations; the derived license is the highest-ranked one
    share_alike: bool = False  # derivatives must carry this exact license
    non_commercial: bool = False
    no_derivatives: bool = False


# A small allow-list of ids the Hub knows (plus "other" with a license_name).
LICENSES: dict[str, Terms] = {
    "cc0-1.0": Terms(0),
    "pddl": Terms(0),
    "mit": Terms(1),
    "bsd-2-clause": Terms(2),
    "bsd-3-clause": Terms(2),
    "apache-2.0": Terms(3),
    "odc-by": Terms(4),
    "cc-by-4.0": Terms(5),
    "cc-by-sa-4.0": Terms(6, share_alike=True),
    "cc-by-nc-4.0": Terms(7, non_commercial=True),
    "cc-by-nc-sa-4.0": Terms(8, share_alike=True, non_commercial=True),
    "cc-by-nd-4.0": Terms(9, no_derivatives=True),
    "cc-by-nc-nd-4.0": Terms(9, non_commercial=True, no_derivatives=True),
}


class LicenseError(RecipeError):
    """Sources whose licenses cannot be combined, or a license id we do not know."""


@dataclass(frozen=True)
class SourceLicense:
    name: str  # what the card calls the source: a file name or "template bank health"
    license: str  # an id from LICENSES, or UNKNOWN


@dataclass(frozen=True)
class DerivedLicense:
    license: str  # an id from LICENSES, or "other" when a source declares none
    sources: list[SourceLicense]
    license_name: str | None = None  # set with license "other"

    @property
    def undeclared(self) -> list[str]:
        return [s.name for s in self.sources if s.license == UNKNOWN]

    def metadata(self) -> dict[str, str]:
        meta = {"license": self.license}
        if self.license_name:
            meta["license_name"] = self.license_name
        return meta


def source_name(source: dict[str, Any]) -> str:
    if source.get("kind") == "template":
        return f"template bank {source.get('bank') or '?'}"
    path = str(source.get("path") or source.get("name") or source.get("kind") or "source")
    return path.rsplit("/", 1)[-1]


def source_licenses(
    sources: list[dict[str, Any]], license: str | None = None, recipe: str | None = None
) -> list[SourceLicense]:
    """Each manifest source with its declared license (template banks: the project's), then
    the recipe's own text (system prompts, hand-written scenarios), which has a license too."""
    found = []
    for source in sources:
        declared = source.get("license")
        if not declared and source.get("kind") == "template":
            declared = PROJECT_LICENSE
        found.append(SourceLicense(source_name(source), _normalize(declared)))
    if license:
        found.append(SourceLicense(f"recipe {recipe or ''}".strip(), _normalize(license)))
    return found


def derive_license(
    sources: list[dict[str, Any]], license: str | None = None, recipe: str | None = None
) -> DerivedLicense:
    """The license a version's card declares: the strictest every source allows."""
    return combine(source_licenses(sources, license, recipe))


def combine(sources: list[SourceLicense]) -> DerivedLicense:
    known = [s for s in sources if s.license != UNKNOWN]
    for s in known:
        if s.license not in LICENSES:
            raise LicenseError(
                f"source {s.name!r}: unknown license {s.license!r}; known: {', '.join(LICENSES)}"
            )
    _check_compatible(known)
    if len(known) < len(sources):
        # An undeclared source makes the whole dataset's terms unknown: say so, don't guess.
        return DerivedLicense("other", sources, license_name="unknown (a source declares no license)")
    if not known:
        return DerivedLicense(PROJECT_LICENSE, sources)
    strictest = max(known, key=lambda s: LICENSES[s.license].rank)
    return DerivedLicense(strictest.license, sources)


def _check_compatible(sources: list[SourceLicense]) -> None:
    def names(pred) -> str:
        return ", ".join(f"{s.name} ({s.license})" for s in sources if pred(LICENSES[s.license]))

    nd = [s for s in sources if LICENSES[s.license].no_derivatives]
    if nd:
        raise LicenseError(
            f"incompatible licenses: {names(lambda t: t.no_derivatives)} forbid derivatives, "
            "so no preference dataset may be built from them"
        )
    share_alike = {s.license for s in sources if LICENSES[s.license].share_alike}
    if len(share_alike) > 1:
        raise LicenseError(
            f"incompatible licenses: {names(lambda t: t.share_alike)} each require derivatives "
            "to carry their own license"
        )
    if share_alike:
        (sa,) = share_alike
        if not LICENSES[sa].non_commercial and any(LICENSES[s.license].non_commercial for s in sources):
            raise LicenseError(
                f"incompatible licenses: {names(lambda t: t.share_alike)} requires derivatives to allow "
                f"commercial use, but {names(lambda t: t.non_commercial)} forbids it"
            )


def _normalize(license_id: str | None) -> str:
    return license_id.strip().lower() if license_id and license_id.strip() else UNKNOWN
