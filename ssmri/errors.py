"""ssmri's own errors: what a user can fix (config, data, checkpoint, disk), shown as one line.

Each class also derives from the built-in type that code and tests caught before
(``ValueError``, ``OSError``, ...), so raising one changes nothing for existing callers. The
entry points print them as ``error: <message>`` without a traceback (:func:`is_user_error`).
"""

import traceback
from pathlib import Path


class SsmriError(Exception):
    """An error a user can fix from its message alone."""


class ConfigError(SsmriError, ValueError):
    """A config value that cannot be right; the message names the key."""


class DataError(SsmriError, ValueError):
    """Input data that cannot be read or used; the message names the file and the key."""


class CheckpointError(SsmriError, ValueError):
    """A checkpoint that cannot be loaded safely or is not an ssmri checkpoint."""


class DiskError(SsmriError, OSError):
    """A folder that cannot be written or has no room; the message gives the free space."""


_PACKAGE = Path(__file__).resolve().parent
# Built-in errors that ssmri code raises on purpose with a message meant for the user.
_DELIBERATE = (ValueError, FileNotFoundError, NotADirectoryError, FloatingPointError, RuntimeError)


def is_user_error(error: BaseException) -> bool:
    """True for :class:`SsmriError` and for the clear built-in errors raised by ssmri code itself.

    A built-in error counts only when its ``raise`` statement is in the ssmri package (the
    innermost frame), so a bug deep in torch or a library keeps its traceback.
    """
    if isinstance(error, SsmriError):
        return True
    if not isinstance(error, _DELIBERATE) or error.__traceback__ is None:
        return False
    innermost = traceback.extract_tb(error.__traceback__)[-1].filename
    return Path(innermost).resolve().is_relative_to(_PACKAGE)


def one_line(error: BaseException) -> str:
    """``error: <message>`` on one line (newlines of a long message folded into '; ')."""
    message = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return f"error: {message or type(error).__name__}"
