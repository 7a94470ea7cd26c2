"""Errors a user can act on. The CLI prints them as one line, never a traceback."""


class MolleakError(Exception):
    """Base class: a problem with the user's input, files or configuration."""


class InputFileError(MolleakError):
    """A file the user gave is missing, empty, unreadable or malformed."""


class CheckpointError(MolleakError):
    """A checkpoint is corrupt, of an unknown format, or does not fit the model."""


class FeaturizationError(MolleakError):
    """A molecule cannot be turned into a graph (e.g. it still holds a dummy atom)."""


class QueryBudgetExceeded(MolleakError):
    """The victim's query budget would be exceeded by a request."""
