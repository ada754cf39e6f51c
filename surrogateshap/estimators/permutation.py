"""Monte-Carlo permutation sampling with antithetic (reversed) permutations."""

from __future__ import annotations

import numpy as np

from ..checks import check_int
from .base import SamplingEstimator
from .result import Attribution


def _prefix_masks(perm: np.ndarray) -> np.ndarray:
    """The n + 1 prefix coalitions of a permutation, empty first."""
    n = perm.size
    masks = np.zeros((n + 1, n), dtype=bool)
    order = np.zeros(n, dtype=np.int64)
    order[perm] = np.arange(n)
    masks[1:] = order[None, :] < np.arange(1, n + 1)[:, None]
    return masks


class PermutationShapley(SamplingEstimator):
    """Shapley values averaged over random permutations, using at most ``budget`` distinct coalitions.

    Each draw is a permutation and, with ``antithetic``, its reverse; a draw is kept only
    if its new coalitions still fit in the budget. ``std`` is the standard error over
    draws. Sampling stops at the first draw that would exceed the budget, or after
    ``max_permutations`` draws (default: ``budget``, at most ``2**n``: once every coalition has
    been seen further permutations are free, and the draws must end).

    Parameters
    ----------
    budget, seed : see :class:`~surrogateshap.estimators.base.SamplingEstimator`.
    antithetic : pair every permutation with its reverse.
    max_permutations : at most this many draws (default: ``min(budget, 2**n)``).

    >>> from surrogateshap.games import MoebiusGame
    >>> game = MoebiusGame(np.eye(4, dtype=bool), np.array([1.0, 2.0, 3.0, 4.0]))
    >>> PermutationShapley(budget=16, seed=0).estimate(game).values  # additive: exact from one draw
    array([1., 2., 3., 4.])
    """

    name = "permutation"

    def __init__(
        self,
        budget: int | None = None,
        seed: int = 0,
        antithetic: bool = True,
        max_permutations: int | None = None,
    ) -> None:
        super().__init__(budget, seed)
        self.antithetic = antithetic
        self.max_permutations = max_permutations

    def _check(self) -> None:
        if self.max_permutations is not None:
            check_int(self.max_permutations, "max_permutations", 1)

    def _estimate(self, game: object) -> Attribution:
        game = self._cached(game)
        n = game.n_players
        budget = self.budget_for(n)
        antithetic = self.antithetic
        rng = self._rng()
        # by default at most one draw per distinct coalition the game has: the loop ends for any budget
        distinct = budget if n >= 62 else min(budget, 2**n)
        max_draws = distinct if self.max_permutations is None else int(self.max_permutations)
        seen = {np.packbits(np.zeros(n, dtype=bool)).tobytes(), np.packbits(np.ones(n, dtype=bool)).tobytes()}
        draws: list[list[np.ndarray]] = []
        while len(draws) < max_draws:
            perm = rng.permutation(n)
            members = [perm, perm[::-1].copy()] if antithetic else [perm]
            prefixes = [_prefix_masks(p) for p in members]
            new = {np.packbits(row).tobytes() for block in prefixes for row in block} - seen
            if len(seen) + len(new) > budget:
                break
            seen |= new
            draws.append(members)
        if not draws:
            need = 2 * (n - 1) + 2 if antithetic and n > 2 else n + 1
            what = "antithetic pair of permutations" if antithetic else "permutation"
            raise ValueError(
                f"budget={budget} is too small for one {what} of {n} players "
                f"(needs about {need} distinct coalitions); raise the budget."
            )
        perms = np.array([p for members in draws for p in members])
        masks = np.concatenate([_prefix_masks(p) for p in perms])
        values = game(masks).reshape(len(perms), n + 1)
        marginal = np.zeros((len(perms), n))
        np.put_along_axis(marginal, perms, np.diff(values, axis=1), axis=1)
        per_draw = marginal.reshape(len(draws), -1, n).mean(axis=1)
        std = per_draw.std(axis=0, ddof=1) / np.sqrt(len(draws)) if len(draws) > 1 else None
        return Attribution(
            values=per_draw.mean(axis=0),
            std=std,
            v_empty=float(values[0, 0]),
            v_full=float(values[0, -1]),
            method=self.name,
            n_evaluations=game.n_evaluations,
            diagnostics={"n_permutations": int(len(perms)), "antithetic": antithetic},
        )
