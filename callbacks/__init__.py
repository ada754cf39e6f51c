"""Lightning callbacks of surrogateshap (installed as ``surrogateshap.callbacks``)."""

from .bank_writer import BankWriter

__all__ = ["BankWriter"]
