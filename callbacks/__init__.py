"""Lightning callbacks of surrogateshap (installed as ``surrogateshap.callbacks``)."""

from .attribution import SurrogateShapCallback
from .bank_writer import BankWriter

__all__ = ["BankWriter", "SurrogateShapCallback"]
