"""Limits the web server enforces, importable without the web extra (the CLI shows them)."""

DEFAULT_MAX_BODY = 64 * 1024  # a label, its flags and a 4,000-character note fit many times over
KEEP_ALIVE_S = 75  # an idle connection is kept this long: longer than a person reads one item
