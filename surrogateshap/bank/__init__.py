"""Contributor banks: per-sample features of images generated per contributor, in memory and on disk.

- :mod:`~surrogateshap.bank.rows`: the rows (arrays and bookkeeping), checked and in plan order;
- :mod:`~surrogateshap.bank.memory`: :class:`ContributorBank`, what games read;
- :mod:`~surrogateshap.bank.storage`: the folder format (manifests, checksummed shards), :class:`ShardWriter`
  and the resume helpers.
"""

from .memory import ContributorBank
from .rows import RESERVED_ARRAYS, BankRows, bank_rows
from .storage import FORMAT_VERSION, ShardWriter, check_bank_folder, existing_rows

__all__ = [
    "FORMAT_VERSION",
    "RESERVED_ARRAYS",
    "BankRows",
    "ContributorBank",
    "ShardWriter",
    "bank_rows",
    "check_bank_folder",
    "existing_rows",
]
