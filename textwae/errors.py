"""The errors a user can fix. Each names what to change; the CLI prints it as one line.

Every user error derives from `TextWAEError`, so a caller catches one class. They also keep
the built-in base each had before (ValueError, RuntimeError) for code that catches those.
"""

from __future__ import annotations


class TextWAEError(Exception):
    """Base of every error a user can fix by changing input, config or files."""

    exit_status = 2  # what the command line exits with


class ConfigError(TextWAEError, ValueError):
    """A config key or value the user must fix."""


class DataError(TextWAEError, ValueError):
    """Unreadable, empty or malformed data."""


class RunDirectoryError(TextWAEError, ValueError):
    """A run directory that is missing, incomplete, corrupt or would be overwritten."""


class TokenizerError(TextWAEError, ValueError):
    """A tokenizer file that is missing, unreadable or does not fit the model."""


class EvaluationWarning(UserWarning):
    """A metric was left out (or computed in a fallback way), and why."""


class TrainingError(TextWAEError, RuntimeError):
    """Training cannot go on (e.g. a NaN loss); the run directory keeps its last good state."""


class TrainingInterrupted(TextWAEError):
    """A signal (Ctrl-C, SIGTERM, SIGHUP) stopped training at a step boundary, after saving a
    resumable state."""

    def __init__(self, message: str, exit_status: int = 130) -> None:
        super().__init__(message)
        self.exit_status = exit_status  # the shell's status for the signal: 128 + its number
