"""The ``traitdose`` command: mounts each package's own commands, holds no logic."""

from __future__ import annotations

import typer

from annotation.cli import app as annotation_app
from curation.cli import app as curation_app
from data_cards.cli import app as data_cards_app
from recipes.cli import app as recipes_app
from trainer.cli import app as trainer_app

app = typer.Typer(
    help="Build small, clean, versioned preference datasets for beneficial traits, and apply them as a dose.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
for package_app in (recipes_app, curation_app, data_cards_app, trainer_app):
    app.add_typer(package_app)
app.add_typer(annotation_app, name="annotate")

if __name__ == "__main__":
    app()
