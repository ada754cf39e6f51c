"""Evaluating attributions: the linear datamodel score, proxy fidelity and counterfactual removal."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, spearmanr

from .estimators import Attribution
from .games import check_masks, evaluate


def linear_prediction(attribution: Attribution, masks: np.ndarray) -> np.ndarray:
    """The additive prediction ``v_empty + masks @ values`` of each coalition's value."""
    masks = check_masks(masks, attribution.n_players)
    return attribution.v_empty + masks.astype(np.float64) @ attribution.values


def fidelity(proxy: Sequence[float], truth: Sequence[float]) -> tuple[float, float]:
    """Spearman and Pearson correlation of proxy values with ground-truth values (e.g. retraining).

    NaN for both when there are fewer than 3 pairs or either side is constant.
    """
    x, y = np.asarray(proxy, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    return float(spearmanr(x, y).statistic), float(pearsonr(x, y).statistic)


def lds(attribution: Attribution, masks: np.ndarray, values: np.ndarray) -> float:
    """Linear datamodel score: Spearman correlation between ``v_empty + masks @ phi`` and ``values``.

    The paper reports 100 x this number. ``masks`` are held-out coalitions (typically
    ``sample_coalitions(n, k, "datamodel", alpha=0.5)``) and ``values`` their observed
    utilities (proxy game or retraining).
    """
    values = np.asarray(values, dtype=np.float64)
    predicted = linear_prediction(attribution, masks)
    if values.shape != predicted.shape:
        raise ValueError(f"lds needs one observed value per coalition: {predicted.size} masks, {values.size} values.")
    if values.size < 3:
        raise ValueError("lds needs at least 3 held-out coalitions to rank.")
    return float(spearmanr(predicted, values).statistic)


def removal_mask(values: np.ndarray, fraction: float, which: str = "top", keep: bool = False) -> np.ndarray:
    """The coalition without (or, with ``keep``, only with) the top/bottom ``fraction`` of players.

    The number of players selected is ``max(1, round(fraction * n))``; ties are broken by
    player index.
    """
    if which not in ("top", "bottom"):
        raise ValueError(f"which must be 'top' or 'bottom', got {which!r}.")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}.")
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    count = max(1, int(round(fraction * n)))
    order = np.argsort(-values if which == "top" else values, kind="stable")
    selected = np.zeros(n, dtype=bool)
    selected[order[:count]] = True
    return selected if keep else ~selected


def counterfactual(
    attribution: Attribution,
    game: object,
    fractions: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.4),
    keep: bool = False,
) -> pd.DataFrame:
    """Utility change when the top / bottom ``fraction`` of players by value are removed (or kept).

    Returns one row per (fraction, which) with the coalition's value and its change from
    ``v_full``; ``game`` is the ground-truth game to evaluate (retraining, or the proxy).
    """
    rows, masks = [], []
    for fraction in fractions:
        for which in ("top", "bottom"):
            mask = removal_mask(attribution.values, fraction, which, keep)
            masks.append(mask)
            rows.append({"fraction": fraction, "which": which, "n_selected": int((mask if keep else ~mask).sum())})
    values = evaluate(game, np.array(masks))
    frame = pd.DataFrame(rows)
    frame["value"] = values
    frame["change"] = values - attribution.v_full
    return frame
