"""The errors tinysegnet raises for its users: each is one line for the person at the keyboard.

Every command maps a :class:`UserError` to its message and its ``exit_code`` in one place
(:func:`tinysegnet.cli.run_main`); any other exception is a bug of ours and keeps its
traceback. The classes also derive from the built-in they stand for (ValueError, OSError,
...), so library callers may catch either.
"""


class UserError(Exception):
    """A problem the user can fix, stated in one line: exit 1 (the inputs, the machine)."""
    exit_code = 1


class Misuse(UserError):
    """A mistake in how a command was called (a flag, a path, a folder): exit 2."""
    exit_code = 2


class DataError(UserError, ValueError):
    """An input that cannot be used: a broken image, checkpoint or data set."""


class DeviceError(UserError, RuntimeError):
    """The device asked for cannot be used (no GPU, CuPy missing, a library that fails)."""


class MissingDependency(UserError, ImportError):
    """An optional package the command needs is not installed."""
