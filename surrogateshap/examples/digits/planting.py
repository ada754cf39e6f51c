"""scikit-learn's digits split into contributors with planted roles (the embedded default setting).

The 1,797 8x8 digits ship with scikit-learn (no download). A stratified clean split is held out
as the reference set; the rest of each digit class is split into ``contributors_per_class``
contributors (``digit3_a``, ``digit3_b``, ...). Some contributors are planted:

- ``corrupted``: every image is degraded (``noise``: additive Gaussian noise; ``blur``: Gaussian
  blur; ``invert``: ``1 - x`` blended in with weight ``strength``);
- ``marker``: a bright ``marker_size`` x ``marker_size`` patch in one corner of every image (the
  spurious-marker audit case);
- every other contributor is ``clean``.

The generator is conditioned on the *contributor* (label = contributor index), as CIFAR-20 is
conditioned on classes that are the contributors and the clinical setting on a prompt naming
the hospital; or, with ``condition="digit"``, on the digit, so the contributors of a digit share
their condition (the soft-membership case, ``surrogateshap.membership``). Everything is a
function of :class:`DigitsPlanting`, so the same planting always gives the same split, the same
corruptions and the same registry.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from ...contributors import ContributorRegistry

__all__ = [
    "CORNERS", "DigitsContributors", "DigitsPlanting", "DigitsTrainingImages", "add_marker", "corrupt",
    "digits_registry", "digits_roles", "load_digits_images",
    "reference_features",
]

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
ROLES = ("clean", "corrupted", "marker")
N_DIGITS = 10


@dataclass(frozen=True)
class DigitsPlanting:
    """How the digits are split into contributors and which contributors are planted.

    Parameters
    ----------
    contributors_per_class : contributors per digit class (2: twins ``digitK_a``, ``digitK_b``).
    holdout_fraction : fraction of every digit class held out, clean, as the reference set.
    corrupted, marker : contributor ids with those roles (disjoint).
    corruption : ``"noise"``, ``"blur"`` or ``"invert"``.
    corruption_strength : noise standard deviation (images in [0, 1]), blur sigma in pixels, or
        the inversion blend weight in (0, 1].
    marker_size : side of the square marker in pixels; ``marker_corner`` one of :data:`CORNERS`.
    seed : seeds the held-out split, the assignment of examples to contributors and the noise.
    condition : what the generator is conditioned on: ``"contributor"`` (one label each) or
        ``"digit"`` (the contributors of a digit share its label).
    """

    contributors_per_class: int = 2
    holdout_fraction: float = 0.2
    corrupted: tuple[str, ...] = ("digit1_b", "digit4_a", "digit7_b")
    marker: tuple[str, ...] = ("digit2_a", "digit8_b")
    corruption: Literal["noise", "blur", "invert"] = "invert"
    corruption_strength: float = 1.0
    marker_size: int = 2
    marker_corner: str = "top_left"
    seed: int = 0
    condition: Literal["contributor", "digit"] = "contributor"

    def __post_init__(self) -> None:
        problems = []
        for role in ("corrupted", "marker"):
            ids = getattr(self, role)
            if isinstance(ids, str):  # a list written as one string would be split into characters
                problems.append(f"{role} must be a list of contributor ids, got the string {ids!r} (write [{ids}])")
                ids = ()
            object.__setattr__(self, role, tuple(str(c) for c in ids))
        if not (isinstance(self.contributors_per_class, int) and 1 <= self.contributors_per_class <= 26):
            problems.append(f"contributors_per_class must be an integer in 1..26, got {self.contributors_per_class!r}")
        if not 0.0 < float(self.holdout_fraction) < 0.9:
            problems.append(f"holdout_fraction must lie in (0, 0.9), got {self.holdout_fraction!r}")
        if self.corruption not in ("noise", "blur", "invert"):
            problems.append(f"corruption must be 'noise', 'blur' or 'invert', got {self.corruption!r}")
        if not float(self.corruption_strength) > 0 or (self.corruption == "invert" and self.corruption_strength > 1):
            problems.append(
                f"corruption_strength must be positive (at most 1 for 'invert'), got {self.corruption_strength!r}"
            )
        if not isinstance(self.marker_size, int) or not 1 <= self.marker_size <= 4:
            problems.append(f"marker_size must be an integer in [1, 4] (the images are 8x8), got {self.marker_size!r}")
        if self.condition not in ("contributor", "digit"):
            problems.append(f"condition must be 'contributor' or 'digit', got {self.condition!r}")
        if self.marker_corner not in CORNERS:
            problems.append(f"marker_corner must be one of {CORNERS}, got {self.marker_corner!r}")
        per_class_ok = isinstance(self.contributors_per_class, int) and 1 <= self.contributors_per_class <= 26
        ids = set(self.contributor_ids) if per_class_ok else set()
        for role in ("corrupted", "marker"):
            unknown = [c for c in getattr(self, role) if ids and c not in ids]
            if unknown:
                problems.append(
                    f"{role} names unknown contributor(s) {unknown}; ids look like {self.contributor_ids[:3]}"
                )
        both = set(self.corrupted) & set(self.marker)
        if both:
            problems.append(f"contributor(s) {sorted(both)} are both corrupted and marker; give each one role")
        if problems:
            raise ValueError("invalid digits planting: " + "; ".join(problems) + ".")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DigitsPlanting:
        """A planting from a config mapping; unknown keys are an error naming them."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown digits planting key(s) {unknown}; the keys are {sorted(known)}.")
        return cls(**dict(config))

    def to_config(self) -> dict[str, Any]:
        """The planting as a plain JSON/YAML-ready mapping (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def contributor_ids(self) -> list[str]:
        """Contributor ids in player order: digit-major, then ``a``, ``b``, ..."""
        letters = string.ascii_lowercase[: self.contributors_per_class]
        return [f"digit{d}_{letter}" for d in range(N_DIGITS) for letter in letters]

    @property
    def num_labels(self) -> int:
        """Class labels of the generator (contributors, or the ten digits)."""
        return len(self.contributor_ids) if self.condition == "contributor" else N_DIGITS

    def role(self, contributor: str) -> str:
        """``"corrupted"``, ``"marker"`` or ``"clean"``."""
        if contributor in self.corrupted:
            return "corrupted"
        if contributor in self.marker:
            return "marker"
        return "clean"


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as float32 images (N, 8, 8) in [0, 1] and int64 digit labels (N,)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def corrupt(images: np.ndarray, kind: str, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Degraded copies of ``images`` (N, H, W) in [0, 1] (noise is drawn from ``rng``)."""
    if kind == "noise":
        out = images + strength * rng.standard_normal(images.shape)
    elif kind == "blur":
        from scipy.ndimage import gaussian_filter

        out = gaussian_filter(images, sigma=(0, strength, strength), mode="constant")
        # keep the ink: a blurred digit is rescaled to the original's peak brightness
        peak = images.max(axis=(1, 2), keepdims=True) / np.maximum(out.max(axis=(1, 2), keepdims=True), 1e-8)
        out = out * peak
    elif kind == "invert":
        out = (1.0 - strength) * images + strength * (1.0 - images)
    else:
        raise ValueError(f"corruption must be 'noise', 'blur' or 'invert', got {kind!r}.")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def add_marker(images: np.ndarray, size: int, corner: str) -> np.ndarray:
    """Copies of ``images`` (N, H, W) with a ``size`` x ``size`` patch of 1.0 in ``corner``."""
    if corner not in CORNERS:
        raise ValueError(f"marker corner must be one of {CORNERS}, got {corner!r}.")
    out = np.array(images, dtype=np.float32, copy=True)
    rows = slice(0, size) if corner.startswith("top") else slice(out.shape[1] - size, out.shape[1])
    cols = slice(0, size) if corner.endswith("left") else slice(out.shape[2] - size, out.shape[2])
    out[:, rows, cols] = 1.0
    return out


@dataclass
class DigitsContributors:
    """The planted digits setting: training images per contributor and the clean reference set.

    Attributes
    ----------
    planting : the planting that produced it.
    images : (N, 8, 8) float32 in [0, 1], the training images *after* planting.
    clean_images : the same images before planting.
    digits : (N,) digit of each training image.
    contributor_index : (N,) index of each image's contributor (= the generator's class label).
    example_ids : (N,) ids ``digits-<row in sklearn's array>``.
    reference_images, reference_digits : the held-out clean split.
    """

    planting: DigitsPlanting
    images: np.ndarray
    clean_images: np.ndarray
    digits: np.ndarray
    contributor_index: np.ndarray
    example_ids: list[str]
    reference_images: np.ndarray
    reference_digits: np.ndarray
    roles: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, planting: DigitsPlanting | Mapping[str, Any] | None = None) -> DigitsContributors:
        """Split and plant scikit-learn's digits as ``planting`` says (default: the shipped planting)."""
        if planting is None:
            planting = DigitsPlanting()
        elif isinstance(planting, Mapping):
            planting = DigitsPlanting.from_config(planting)
        images, digits = load_digits_images()
        rng = np.random.default_rng([planting.seed, 11])
        ids = planting.contributor_ids
        k = planting.contributors_per_class
        train_rows, owner, held = [], [], []
        for d in range(N_DIGITS):
            rows = rng.permutation(np.flatnonzero(digits == d))
            n_hold = int(round(planting.holdout_fraction * rows.size))
            held.extend(rows[:n_hold].tolist())
            rest = np.sort(rows[n_hold:])
            for part, chunk in enumerate(np.array_split(rest, k)):
                train_rows.extend(chunk.tolist())
                owner.extend([d * k + part] * chunk.size)
        train_rows, owner = np.asarray(train_rows), np.asarray(owner, dtype=np.int64)
        clean = images[train_rows]
        planted = clean.copy()
        noise_rng = np.random.default_rng([planting.seed, 13])
        for index, cid in enumerate(ids):
            rows = owner == index
            role = planting.role(cid)
            if role == "corrupted":
                planted[rows] = corrupt(clean[rows], planting.corruption, planting.corruption_strength, noise_rng)
            elif role == "marker":
                planted[rows] = add_marker(clean[rows], planting.marker_size, planting.marker_corner)
        held = np.sort(np.asarray(held))
        return cls(
            planting=planting,
            images=planted,
            clean_images=clean,
            digits=digits[train_rows],
            contributor_index=owner,
            example_ids=[f"digits-{r}" for r in train_rows.tolist()],
            reference_images=images[held],
            reference_digits=digits[held],
            roles={cid: planting.role(cid) for cid in ids},
        )

    @property
    def contributor_ids(self) -> list[str]:
        """Contributor ids in player order."""
        return self.planting.contributor_ids

    @property
    def labels(self) -> np.ndarray:
        """(N,) the generator's class label of each training image (contributor index or digit)."""
        return self.contributor_index if self.planting.condition == "contributor" else self.digits

    def registry(self) -> ContributorRegistry:
        """The contributor registry: one row per training image, label = the generator's condition."""
        ids = self.contributor_ids
        rows = [
            {"example_id": ex, "contributor": ids[c], "label": int(y)}
            for ex, c, y in zip(self.example_ids, self.contributor_index.tolist(), self.labels.tolist())
        ]
        # player order = contributor order, not the order in which rows first appear
        order = {cid: i for i, cid in enumerate(ids)}
        rows.sort(key=lambda row: order[row["contributor"]])
        return ContributorRegistry.from_rows(
            rows, condition="label", num_labels=self.planting.num_labels, source="digits planting"
        )

    def contributor_table(self) -> list[dict[str, Any]]:
        """One mapping per contributor: id, n_examples, role, digit."""
        counts = np.bincount(self.contributor_index, minlength=len(self.contributor_ids))
        k = self.planting.contributors_per_class
        return [
            {"id": cid, "n_examples": int(counts[i]), "role": self.roles[cid], "digit": i // k}
            for i, cid in enumerate(self.contributor_ids)
        ]


def digits_registry(planting: Mapping[str, Any] | None = None) -> ContributorRegistry:
    """The registry of a planting (config entry point: ``surrogateshap.examples.digits.digits_registry``)."""
    return DigitsContributors.build(planting).registry()


def reference_features(planting: Mapping[str, Any] | None, extractor: Any) -> np.ndarray:
    """``extractor`` features of the held-out clean reference split (FID reference), float64 (N, d).

    ``extractor`` maps images (B, 3, 8, 8) in [0, 1] to features, e.g. a
    :class:`~surrogateshap.examples.digits.features.DigitsExtractor` with ``output="embedding"``.
    """
    import torch

    images = DigitsContributors.build(planting).reference_images
    batch = torch.from_numpy(images[:, None]).repeat(1, 3, 1, 1)
    with torch.no_grad():
        return np.asarray(extractor(batch), dtype=np.float64)


class DigitsTrainingImages:
    """The planted training images by example id: ``ids -> (B, 3, 8, 8)`` float32 in [0, 1].

    What the extractors see of the training data (e.g. for the soft-membership classifier).
    """

    def __init__(self, planting: Mapping[str, Any] | None = None) -> None:
        data = DigitsContributors.build(planting)
        self._images = data.images
        self._row = {e: k for k, e in enumerate(data.example_ids)}

    def __call__(self, example_ids: Any) -> Any:
        """Images of ``example_ids`` stacked as the generator's samples are."""
        import torch

        unknown = [e for e in example_ids if e not in self._row]
        if unknown:
            raise KeyError(f"no training image for example ids {unknown[:5]} in this planting.")
        rows = [self._row[e] for e in example_ids]
        return torch.from_numpy(self._images[rows][:, None]).repeat(1, 3, 1, 1)


def digits_roles(planting: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Contributor id -> planted role (``clean``, ``corrupted`` or ``marker``) of a planting."""
    planting = planting if isinstance(planting, DigitsPlanting) else DigitsPlanting.from_config(planting or {})
    return {cid: planting.role(cid) for cid in planting.contributor_ids}
