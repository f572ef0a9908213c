"""The root command: lazy help panels, one-line errors for bad input, tracebacks for bugs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from core.errors import OptionError, TraitdoseError
from traitdose.cli import COMMANDS, app
from traitdose.console import DEBUG_ENV, clean_errors, install_hint

runner = CliRunner()


def test_help_lists_every_command_in_panels_without_importing_packages():
    code = (
        "import sys; from typer.testing import CliRunner; from traitdose.cli import app\n"
        "out = CliRunner().invoke(app, ['--help']).output\n"
        "heavy = [m for m in ('recipes.cli', 'curation.cli', 'annotation.cli', 'trainer.cli', "
        "'data_cards.cli', 'polars', 'datasketch') if m in sys.modules]\n"
        "print(heavy); print(out)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == "[]"
    for panel in ("Build", "Curate", "Inspect", "Publish", "Annotate", "Train"):
        assert f"─ {panel} ─" in out
    for name in COMMANDS:
        assert f" {name} " in out


def test_annotate_alone_prints_its_help():
    out = runner.invoke(app, ["annotate"])
    assert "Missing command" not in out.output
    assert "add-annotator" in out.output and "merge" in out.output


def _command(exc: BaseException):
    cli = typer.Typer()

    @cli.command()
    @clean_errors
    def go() -> None:
        raise exc

    return cli


def test_traitdose_errors_are_one_line_and_markup_is_printed_as_text(monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    out = runner.invoke(_command(OptionError("--name 'eve[/]' [bold]x")), [])
    assert out.exit_code == 1
    assert out.output.strip() == "error: --name 'eve[/]' [bold]x"


def test_other_errors_are_bugs_and_keep_their_traceback(monkeypatch):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    out = runner.invoke(_command(ValueError("a bug")), [])
    assert isinstance(out.exception, ValueError)  # not turned into a clean exit
    assert out.exit_code == 1


def test_debug_shows_tracebacks_for_traitdose_errors_too(monkeypatch):
    monkeypatch.setenv(DEBUG_ENV, "1")
    out = runner.invoke(_command(OptionError("bad")), [])
    assert isinstance(out.exception, TraitdoseError)


def test_debug_flag_sets_the_environment(monkeypatch):
    monkeypatch.setenv(DEBUG_ENV, "0")  # recorded, so the flag's setting is undone after the test
    out = runner.invoke(app, ["--debug", "recipe", "validate", "/nonexistent/recipe.yaml"])
    assert isinstance(out.exception, TraitdoseError)


@pytest.mark.parametrize("extra", ["web", "train", "argilla", "annotate", "llm"])
def test_install_hints_keep_the_extra_in_brackets(monkeypatch, extra):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    module = {"web": "fastapi", "train": "torch", "argilla": "argilla", "annotate": "krippendorff"}.get(
        extra, "openai"
    )
    missing = ModuleNotFoundError(f"No module named {module!r}", name=module)
    out = runner.invoke(_command(missing), [])
    assert out.exit_code == 1
    assert f"pip install 'traitdose[{extra}]'" in out.output
    assert install_hint(module, extra) in out.output
