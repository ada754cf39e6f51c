"""The sampling plan: which samples to generate for each contributor, with which seed and condition.

Sample ``j`` of contributor ``c`` has a seed derived from ``(global seed, c, j)`` only, and its
condition is drawn with an RNG seeded by that seed, so adding contributors, changing ``m`` or
splitting the plan over batches and processes never changes an existing sample.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, Subset

from ..checks import check_int, check_seed
from ..contributors import ContributorRegistry
from ..membership import ConditionUnits, condition_units

__all__ = ["RankShardSampler", "SamplingPlan", "bank_config", "collate_plan_rows", "sample_seed", "stable_int"]

_SEED_MASK = (1 << 63) - 1  # seeds fit in int64 (the bank's dtype) and torch.Generator.manual_seed


def stable_int(text: str) -> int:
    """A 64-bit integer from the sha256 of ``text`` (stable across runs, unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(str(text).encode("utf-8")).digest()[:8], "little")


def sample_seed(global_seed: int, contributor: str, sample_index: int) -> int:
    """The seed of sample ``sample_index`` of ``contributor``: a function of these three only."""
    state = np.random.SeedSequence([int(global_seed), stable_int(contributor), int(sample_index)])
    return int(state.generate_state(1, dtype=np.uint64)[0]) & _SEED_MASK


class SamplingPlan(Dataset):
    """m samples per contributor as a map-style dataset (Lightning's samplers split it over ranks).

    Row ``i`` (plan order: contributor order, then sample index) is a dict with ``contributor``
    (id), ``contributor_index``, ``sample_index`` (j), ``seed``, ``condition`` (a class label
    drawn in proportion to the contributor's example counts, or the caption of one of its
    examples drawn uniformly) and ``example_id`` (the id of that drawn example for captions, the
    source image of paired scorers; ``None`` for labels).

    Parameters
    ----------
    registry : the contributors and their conditions.
    samples_per_contributor : m for every contributor, or a dict id -> m covering all of them
        (per unit with ``per_unit``).
    seed : the global seed (a non-negative integer).
    per_unit : plan per unit of shared conditions (:func:`~surrogateshap.membership.condition_units`)
        instead of per contributor: the bank that soft membership weights. Without shared
        conditions the plan is the same either way.

    Attributes
    ----------
    registry : what the plan's rows are drawn from: ``registry`` itself, or with ``per_unit`` the
        registry of units (one "contributor" per unit).
    units : the :class:`~surrogateshap.membership.ConditionUnits` with ``per_unit``, else None.

    >>> rows = [{"example_id": f"x{k}", "contributor": who, "label": 0} for k, who in enumerate(["ann", "bob"])]
    >>> registry = ContributorRegistry.from_rows(rows, num_labels=1)
    >>> plan = SamplingPlan(registry, 2, seed=0, per_unit=True)
    >>> len(plan), plan.registry.contributor_ids, plan[0]["condition"]
    (2, ['label:0'], 0)
    """

    def __init__(
        self,
        registry: ContributorRegistry,
        samples_per_contributor: int | Mapping[str, int] = 1,
        seed: int = 0,
        per_unit: bool = False,
    ) -> None:
        self.seed = check_seed(seed)
        self.units: ConditionUnits | None = condition_units(registry) if per_unit else None
        registry = registry if self.units is None else self.units.registry
        self.registry = registry
        ids = registry.contributor_ids
        if isinstance(samples_per_contributor, Mapping):
            given = {str(k): v for k, v in samples_per_contributor.items()}
            missing = [c for c in ids if c not in given]
            unknown = [c for c in given if c not in registry]
            if missing or unknown:
                raise ValueError(
                    "samples_per_contributor must give m for every contributor of the registry and no other: "
                    f"missing {missing[:10]}, unknown {unknown[:10]}."
                )
            counts = {c: given[c] for c in ids}
        else:
            counts = {c: samples_per_contributor for c in ids}
        for cid, m in counts.items():
            check_int(m, f"samples_per_contributor for {cid!r}", 0)
        self.samples_per_contributor: dict[str, int] = {c: int(m) for c, m in counts.items()}
        self._ids = ids
        self._offsets = np.cumsum([0, *self.samples_per_contributor.values()])
        self._index = {cid: i for i, cid in enumerate(ids)}
        if registry.condition_kind == "label":
            self._labels = {c: np.array(list(registry.label_counts(c)), dtype=np.int64) for c in ids}
            self._cum = {c: np.cumsum(list(registry.label_counts(c).values())) for c in ids}
        else:
            # captions(c)[k] is the caption of example_ids(c)[k]: both list the contributor's examples in file order
            self._captions = {c: registry.captions(c) for c in ids}
            self._example_ids = {c: registry.example_ids(c) for c in ids}

    @property
    def n_examples(self) -> dict[str, int]:
        """Training examples per contributor (the bank's game weights), in player order."""
        return self.registry.n_examples

    @property
    def condition_kind(self) -> str:
        """``"label"`` or ``"caption"``: what the conditions are."""
        return self.registry.condition_kind

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """(contributor_index, sample_index) of plan row ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"plan row {index} is out of range (the plan has {len(self)} rows).")
        c = int(np.searchsorted(self._offsets, index, side="right")) - 1
        return c, int(index - self._offsets[c])

    def draw(self, contributor: str, seed: int) -> tuple[int | str, str | None]:
        """(condition, example_id) drawn for a sample of ``contributor`` with this seed.

        Captions: example ``k`` of the contributor is drawn uniformly and its caption is the
        condition, its id the ``example_id``. Labels: a label in proportion to its example count,
        and no example (``None``).
        """
        rng = np.random.default_rng(seed)
        if self.registry.condition_kind == "label":
            cum = self._cum[contributor]
            k = int(rng.integers(int(cum[-1])))  # exact integer weights: label l has count_l chances
            return int(self._labels[contributor][int(np.searchsorted(cum, k, side="right"))]), None
        captions = self._captions[contributor]
        k = int(rng.integers(len(captions)))
        return captions[k], self._example_ids[contributor][k]

    def condition(self, contributor: str, seed: int) -> int | str:
        """The condition drawn for a sample of ``contributor`` with this seed."""
        return self.draw(contributor, seed)[0]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if isinstance(index, (torch.Tensor, np.integer)):
            index = int(index)
        c, j = self.locate(index)
        cid = self._ids[c]
        seed = sample_seed(self.seed, cid, j)
        condition, example_id = self.draw(cid, seed)
        return {
            "contributor": cid,
            "contributor_index": c,
            "sample_index": j,
            "seed": seed,
            "condition": condition,
            "example_id": example_id,
        }

    def row_key(self, index: int) -> tuple[str, int]:
        """(contributor id, sample_index) of plan row ``index`` (the bank's row key)."""
        c, j = self.locate(index)
        return self._ids[c], j

    def check_backend(self, backend: Any) -> None:
        """Raise a ValueError if ``backend`` takes another kind of condition than this plan draws."""
        kind = getattr(backend, "condition_kind", self.condition_kind)
        if kind != self.condition_kind:
            raise ValueError(
                f"the backend {type(backend).__name__} takes {kind} conditions but the plan's registry holds "
                f"{self.condition_kind}s."
            )

    @staticmethod
    def ensure(plan: Any, what: str = "plan") -> SamplingPlan:
        """``plan`` itself when it is a ``SamplingPlan``, else the ValueError every taker of a plan gives."""
        if not isinstance(plan, SamplingPlan):
            raise ValueError(
                f"{what} must be a SamplingPlan (in a config: class_path surrogateshap.generation.SamplingPlan with "
                f"its init_args), got {type(plan).__name__}."
            )
        return plan

    def remaining(self, existing_rows: Collection[tuple[str, int]]) -> Subset:
        """The plan rows not in ``existing_rows`` (pairs (contributor id, sample_index)), in plan order."""
        done = set(existing_rows)
        keep = [i for i in range(len(self)) if self.row_key(i) not in done]
        return Subset(self, keep)

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable description (stored in the bank's config, checked on resume)."""
        return {
            "seed": self.seed,
            "samples_per_contributor": dict(self.samples_per_contributor),
            "condition_kind": self.registry.condition_kind,
            "registry_sha256": self.registry.fingerprint(),
        }

    def __repr__(self) -> str:
        return f"SamplingPlan({len(self)} rows, {len(self._ids)} contributors, seed={self.seed})"


def bank_config(
    plan: SamplingPlan, generation: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The config stored with a bank (and checked when it is resumed): the plan, the generation settings and
    ``extra`` (user keys).

    ``generation`` is what the generating module reports
    (:meth:`~surrogateshap.generation.SubsetConditionedGenerator.generation_config`: backend, guidance,
    steps, each feature's extractor class), so a resumed bank cannot mix settings or extractors.
    """
    config: dict[str, Any] = {"plan": plan.describe()}
    if generation is not None:
        config["generation"] = dict(generation)
    clash = set(config) & set(extra or {})
    if clash:
        raise ValueError(f"config keys {sorted(clash)} are reserved for the plan and generation settings.")
    return {**config, **dict(extra or {})}


def collate_plan_rows(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Batch plan rows: ints as int64 tensors, contributor ids, conditions and example ids as lists.

    ``example_id`` is a list with one entry per row (``None`` where a row has none or omits it).
    """
    return {
        "contributor": [r["contributor"] for r in rows],
        "contributor_index": torch.tensor([r["contributor_index"] for r in rows], dtype=torch.int64),
        "sample_index": torch.tensor([r["sample_index"] for r in rows], dtype=torch.int64),
        "seed": torch.tensor([r["seed"] for r in rows], dtype=torch.int64),
        "condition": [r["condition"] for r in rows],
        "example_id": [r.get("example_id") for r in rows],
    }


class RankShardSampler(Sampler[int]):
    """Rows ``rank, rank + world_size, ...`` of ``n`` rows: each row goes to exactly one process.

    The rank and world size are read when the loader is used (so the sampler can be built before
    DDP starts): from ``trainer.global_rank`` / ``trainer.world_size`` when a Trainer is given,
    else from ``torch.distributed`` (every row without a process group). Prefer the Trainer: a
    process group left over from an earlier DDP run would otherwise split a single-device run.
    Unlike Lightning's ``UnrepeatedDistributedSampler`` it allows ranks without rows (a resumed
    run may have fewer rows left than processes); pass ``Trainer(use_distributed_sampler=False)``.
    """

    def __init__(self, n: int, trainer: Any | None = None) -> None:
        self.n = int(n)
        self.trainer = trainer

    def _rank_and_world(self) -> tuple[int, int]:
        if self.trainer is not None:
            return int(self.trainer.global_rank), int(self.trainer.world_size)
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __iter__(self):
        rank, world = self._rank_and_world()
        return iter(range(rank, self.n, world))

    def __len__(self) -> int:
        rank, world = self._rank_and_world()
        return len(range(rank, self.n, world))
