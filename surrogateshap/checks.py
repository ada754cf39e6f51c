"""Argument checks shared by every public entry point, so one mistake always gets one message.

>>> check_int(np.int64(3), "budget", minimum=2)
3
>>> check_int(2.5, "budget", minimum=2)
Traceback (most recent call last):
...
ValueError: budget must be an integer of at least 2, got 2.5.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["AUTO_BUDGET", "MAX_SEED", "check_budget", "check_coalition", "check_int", "check_seed", "did_you_mean",
           "is_int"]


def is_int(value: Any) -> bool:
    """True for Python and numpy integers; False for bools, floats (even ``3.0``), strings and None.

    >>> [is_int(v) for v in (3, np.int32(3), True, 3.0, "3")]
    [True, True, False, False, False]
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(value: Any, name: str, minimum: int = 0, *, hint: str = "") -> int:
    """``value`` as a plain ``int``, or a ValueError saying that ``name`` must be an integer >= ``minimum``.

    ``hint`` (a sentence) is appended to the message, e.g. why the minimum is what it is.

    >>> check_int(16, "batch_size", minimum=1)
    16
    >>> check_int(0, "batch_size", minimum=1, hint="Give at least one row per batch.")
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be an integer of at least 1, got 0. Give at least one row per batch.
    """
    if not is_int(value) or value < minimum:
        message = f"{name} must be an integer of at least {minimum}, got {value!r}."
        raise ValueError(f"{message} {hint}" if hint else message)
    return int(value)


# the largest seed every generator seeded here takes whole (numpy, torch, XGBoost): distinct seeds stay distinct
MAX_SEED = 2**32 - 1


def check_seed(value: Any, name: str = "seed") -> int:
    """``value`` as an int seed in ``[0, 2**32 - 1]``, or the one message every entry point gives.

    >>> check_seed(7)
    7
    >>> check_seed(2**40)
    Traceback (most recent call last):
    ...
    ValueError: seed must be an integer from 0 to 4294967295 (2**32 - 1), got 1099511627776.
    """
    if not is_int(value) or not 0 <= value <= MAX_SEED:
        raise ValueError(f"{name} must be an integer from 0 to {MAX_SEED} (2**32 - 1), got {value!r}.")
    return int(value)


def check_coalition(
    members: Iterable[Any] | None, valid: Sequence[str], what: str = "contributors"
) -> list[str] | None:
    """A coalition given by ids (None stays None) as a list of strings, or a ValueError naming unknown ids.

    >>> check_coalition(["b"], ["a", "b"])
    ['b']
    >>> check_coalition(["z"], ["a", "b"])
    Traceback (most recent call last):
    ...
    ValueError: contributors must be a non-empty subset of ['a', 'b']; unknown ['z'].
    """
    if members is None:
        return None
    chosen = [str(m) for m in members]
    unknown = sorted(set(chosen) - set(valid))
    if unknown or not chosen:
        shown = list(valid) if len(valid) <= 6 else [*valid[:3], "...", valid[-1]]
        raise ValueError(f"{what} must be a non-empty subset of {shown}; unknown {unknown[:5]}.")
    return chosen


#: the budget that chooses itself: coalitions sampled in rounds until the values have converged
AUTO_BUDGET = "auto"


def check_budget(budget: Any, auto: bool = False) -> int | str | None:
    """A coalition budget as an int (None stays None; ``"auto"`` where ``auto``), or the one message every
    entry point gives.

    >>> check_budget(64), check_budget(None), check_budget("auto", auto=True)
    (64, None, 'auto')
    """
    if budget is None:
        return None
    if budget == AUTO_BUDGET and auto:
        return AUTO_BUDGET
    if isinstance(budget, str) and budget.strip().lower() == AUTO_BUDGET:
        if auto:  # a spelling of it ("Auto", " auto")
            raise ValueError(f"budget {budget!r}: write 'auto' (lowercase, no spaces) or an integer of at least 2.")
        raise ValueError("budget 'auto' (sampling in rounds until the values converge) is offered by method "
                         "'surrogateshap' only; give this method an integer budget of at least 2.")
    hint = "The empty and the full coalition count toward it" + (", or give 'auto'." if auto else ".")
    return check_int(budget, "budget", 2, hint=hint)


def did_you_mean(key: str, valid: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest valid name to a mistyped ``key``, else an empty string.

    >>> did_you_mean("estimater", ["estimator", "plan"])
    " (did you mean 'estimator'?)"
    """
    close = difflib.get_close_matches(str(key), [str(v) for v in valid], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
