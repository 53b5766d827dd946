"""The errors that say the user gave something wrong: a file, a config value, an argument, a name.
The command line prints their message alone (and an ``OSError``'s, which names the path); any other
exception is a fault of the program and shows its traceback. Each is also the built-in exception it
refines (``ValueError``, ``KeyError``), so that code catching those keeps working."""

from __future__ import annotations


class SPDError(Exception):
    """Something the user gave is wrong; the message says what and where."""


class InputError(SPDError, ValueError):
    """A value is wrong: an argument, a config value, the content of a file."""


class UnknownName(SPDError, KeyError):
    """A name that is not one of the known ones (a label space, a preset, a domain, a task)."""

    def __str__(self) -> str:  # KeyError quotes its message; this one is a sentence
        return str(self.args[0]) if self.args else ""


class LossNotFinite(SPDError, FloatingPointError):
    """Training stopped: the loss is NaN or infinite (the message names the step and the terms)."""
