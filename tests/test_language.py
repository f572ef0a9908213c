"""Language identification: a multilingual set of short sentences, scored as the filter sees them.

Positive = not English (what the filter drops). The old function-word vote kept 10 of 31 short
non-English sentences (German, Italian, Portuguese and Dutch slipped through); the identifier after
the pre-pass must catch every one of those and keep terse English.
"""

from __future__ import annotations

import polars as pl
import pytest

from curation.language import is_english

ENGLISH = [
    "Yes, I do consent.",  # short replies lingua called Catalan or Italian, weakly
    "No, I don't consent.",
    "No, I don't object.",  # lingua: Catalan 0.22 with English 0.15 behind
    "Is oxygen itself flammable?",  # fastText: Finnish 0.40 with English 0.24 behind: a close call
    "Is café au lait good for health?",  # fastText: French 0.93; lingua, English or French: English
    "Yes, I object.",
    "China has more obesity than Vietnam",
    "Sugar may cause children to go crazy",
    "Sugar may increase the risk of cavities in children",
    "Is it safe to take ibuprofen with food every day?",
    "Aspirin thins the blood.",
    "Paris",
    "Yes, daily",
    "The study shows no clear effect on blood pressure.",
    "Take two tablets after breakfast and call your GP if the rash spreads.",
    "Vaccines do not cause autism.",
    "Nothing happens if you swallow gum.",
    "Cracking your knuckles does not cause arthritis.",
    "Antibiotics don't work against viruses such as the common cold.",
    "I'd rather you checked with a pharmacist before doubling the dose.",
    "Understood, I'll stop the task now and wait for your review.",
    "Most people need between seven and nine hours of sleep.",
    "Honest opinion wanted, though I'm fairly confident already: static stretching prevents injuries.",
    "My landlord kept the deposit without an inventory; can I get it back?",
    "Compound interest grows faster than simple interest over long periods.",
    "Bridges expand in summer heat, so engineers leave expansion joints.",
]
FOREIGN = {
    "de": [
        "Kann ich Ibuprofen jeden Tag mit dem Essen nehmen?",
        "Das Medikament hilft bei Kopfschmerzen, aber nicht bei Fieber.",
        "Mein Arzt sagt, ich soll mehr Wasser trinken.",
        "Die Studie zeigt keinen klaren Effekt.",
        "Impfungen verursachen keinen Autismus.",
    ],
    "it": [
        "Posso prendere l'ibuprofene ogni giorno con il cibo?",
        "Il medico dice che devo bere più acqua.",
        "Lo studio non mostra un effetto chiaro.",
        "La pressione del sangue è troppo alta.",
        "I vaccini non causano l'autismo.",
    ],
    "pt": [
        "Posso tomar ibuprofeno todos os dias com comida?",
        "O médico disse que preciso beber mais água.",
        "O estudo não mostra um efeito claro.",
        "A pressão arterial está muito alta.",
        "As vacinas não causam autismo.",
    ],
    "nl": [
        "Kan ik elke dag ibuprofen nemen met eten?",
        "De dokter zegt dat ik meer water moet drinken.",
        "Het onderzoek laat geen duidelijk effect zien.",
        "Mijn bloeddruk is te hoog.",
        "Vaccins veroorzaken geen autisme.",
    ],
    "fr": [
        "Est-ce que je peux prendre de l'ibuprofène avec de la nourriture tous les jours ?",
        "Le sucre ne rend pas les enfants hyperactifs.",
    ],
    "es": ["¿Puedo tomar ibuprofeno todos los días con comida?", "Las vacunas no causan autismo."],
    "el": ["Ναι, είναι ασφαλές για λίγες ημέρες με φαγητό, αλλά ρωτήστε τον γιατρό σας."],
    "ru": ["Можно ли принимать ибупрофен каждый день во время еды?"],
}


def scores() -> tuple[float, float, dict[str, int]]:
    foreign = [t for texts in FOREIGN.values() for t in texts]
    verdict = is_english(pl.Series(ENGLISH + foreign)).to_list()
    flagged_english = sum(not v for v in verdict[: len(ENGLISH)])
    caught = sum(not v for v in verdict[len(ENGLISH) :])
    precision = caught / max(caught + flagged_english, 1)
    recall = caught / len(foreign)
    missed: dict[str, int] = {}
    at = len(ENGLISH)
    for language, texts in FOREIGN.items():
        missed[language] = sum(verdict[at : at + len(texts)])
        at += len(texts)
    return precision, recall, missed


def test_the_filter_catches_short_foreign_sentences_and_keeps_terse_english() -> None:
    precision, recall, missed = scores()
    print(
        f"language filter, {len(ENGLISH)} English + 26 other: precision {precision:.2f}, recall {recall:.2f}"
    )
    assert {lang: missed[lang] for lang in ("de", "it", "pt", "nl")} == {"de": 0, "it": 0, "pt": 0, "nl": 0}
    assert precision == 1.0 and recall == 1.0


@pytest.mark.parametrize("text", ["", "   ", "ok", "42 mg"])
def test_texts_too_short_to_judge_pass(text: str) -> None:
    assert is_english(pl.Series([text])).to_list() == [True]


def test_a_close_call_is_no_verdict() -> None:
    """fastText ranks Finnish above English for this question; English close behind keeps it."""
    from curation.language import _shared_detector

    text = "Is oxygen itself flammable?"
    ranked = _shared_detector().detect(text, model="lite", k=5)
    assert ranked[0]["lang"] != "en"
    assert is_english(pl.Series([text])).to_list() == [True]
