from traitdose.cli import app

app(prog_name="traitdose")
