"""The errors traitdose raises for bad input or a bad environment, as one small tree.

``traitdose.console.clean_errors`` prints a :class:`TraitdoseError` as one line
(``error: <message>``) and exits 1; any other exception is a bug and keeps its
traceback. ``--debug`` (or ``TRAITDOSE_DEBUG=1``) shows the traceback of these too.

Each class also derives from the built-in error it replaces (``ValueError``,
``LookupError``, ``PermissionError``), so callers that caught those keep working.

    TraitdoseError
    ├── RecipeError        a recipe file (or a built-in name) that cannot be used
    ├── SourceError        a data file, bank or benchmark that cannot be read
    ├── StoreError         a dataset, version or reference the store cannot resolve or write
    ├── SchemaError        rows that do not fit the item schema
    ├── QueueError         bad input to the annotation queue
    │   └── (AuthError     an unknown token or session: a PermissionError, beside QueueError)
    ├── PublishError       a version that cannot be published
    ├── LLMFatalError      an endpoint no item can succeed against (bad key, model, URL)
    └── OptionError        a command-line option value that makes no sense
"""

from __future__ import annotations


class TraitdoseError(Exception):
    """Bad input or a bad environment: shown as one line, never a traceback."""


class RecipeError(TraitdoseError, ValueError):
    """A recipe that cannot be loaded or run; the message names file, line and field."""


class SourceError(TraitdoseError, ValueError):
    """A source file, template bank or benchmark that cannot be read."""


class StoreError(TraitdoseError, LookupError):
    """A dataset, version or reference that the store cannot resolve, or a version it cannot write."""


class SchemaError(TraitdoseError, ValueError):
    """Rows that do not conform to the item schema."""


class QueueError(TraitdoseError, ValueError):
    """Bad input to the annotation queue (unknown annotator, bad label, item not assigned)."""


class AuthError(TraitdoseError, PermissionError):
    """An unknown annotation token or session."""


class PublishError(TraitdoseError, ValueError):
    """A version that cannot be published as asked."""


class LLMFatalError(TraitdoseError, ValueError):
    """No item can succeed (bad key, unknown model, unreachable endpoint): stop the run."""


class OptionError(TraitdoseError, ValueError):
    """A command-line option whose value cannot be used."""
