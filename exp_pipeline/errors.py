"""User-facing errors.

Every error a user can cause (a bad catalog, an unreadable landing file, an illegal
transition) is an `ExpPipelineError` whose message is one line naming the file, the
experiment or the field; the CLI prints it and exits non-zero instead of a traceback.
"""


class ExpPipelineError(Exception):
    """Base class for errors whose message is meant for the user as it is."""


class CatalogError(ExpPipelineError):
    """The experiment catalog is invalid, or conflicts with the control database."""


class LoadError(ExpPipelineError):
    """A landing file cannot be loaded at all (as opposed to rows that are quarantined)."""


class TransitionError(ExpPipelineError):
    """An experiment lifecycle change that is not allowed from its current status."""


class SettingsError(ExpPipelineError):
    """Pipeline or global settings are missing or malformed."""


class FlagError(ExpPipelineError):
    """A flags snapshot that is malformed, or a flag decision asked with invalid input."""
