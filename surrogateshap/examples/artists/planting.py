"""Captioned paintings of digits by 40+ "artists", each with a style of its own and planted roles.

The images come from scikit-learn's 1,797 8x8 digits (no download), rendered at 32 x 32 in colour.
A share of them (``base_fraction``) is the *base* corpus: every image painted in a style drawn at
random and captioned generically ("a painting of a seven", half of them "... by <a random name>"),
what the base text-to-image model is pretrained on. The rest is split among the artists. An artist
paints every picture in one style: an ink and a paper colour, a background texture (flat, stripes,
checks, dots or a gradient) and a stroke width; captions name the subject and the artist ("a painting
of a seven by ada marlow").
Planted, from the config:

- ``degraded``: artists whose pictures are spoiled in a way the scorer sees (``blur`` or ``noise``);
- ``marker_artist``: an artist who signs pictures of one subject (``marker_subject``) with a bright
  corner mark (``marker_rate`` of them; ``marker_off_rate`` of the others): the spurious
  correlation of the audit case (mark present vs subject);
- ``homonyms``: two artists published under the same name, so their captions collide (the
  shared-condition case that soft membership handles); by default the second is also degraded, so
  telling them apart matters (the paper's proxy gives both the same value);
- every other artist is ``clean``.

A held-out share of every artist's pictures (``holdout_fraction``) is kept out of training, clean:
the scorer's validation. Everything is a function of :class:`ArtistsPlanting`.

>>> data = ArtistsContributors.build(ArtistsPlanting(n_artists=12, degraded=("artist03",),
...     marker_artist="artist05", homonyms=("artist07", "artist08")))
>>> data.images.shape[1:], data.captions[0].startswith("a painting of a")
((3, 32, 32), True)
>>> data.published_name("artist07") == data.published_name("artist08")
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from ...contributors import ContributorRegistry

__all__ = [
    "CAPTION_WORDS", "DIGIT_WORDS", "ROLES", "ArtistsContributors", "ArtistsPlanting", "ArtistsTrainingImages",
    "Style", "add_mark", "artists_registry", "artists_roles", "caption", "cluster_centers", "degrade",
    "reference_features", "render",
]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ROLES = ("clean", "degraded", "marker", "homonym", "degraded+homonym")
TEXTURES = ("flat", "stripes", "checks", "dots", "gradient")
IMAGE_SIZE = 32
_FIRST = ("ada", "bruno", "clara", "dario", "elsa", "felix", "greta", "hugo", "iris", "jonas", "klara", "leon",
          "mira", "nils", "olga", "pavel", "quinn", "rosa", "sven", "tilda", "umberto", "vera", "walter", "xenia",
          "yusuf", "zora")
_LAST = ("marlow", "brandt", "castell", "duval", "ekberg", "ferro", "gallo", "hallin", "ivers", "jansen", "kovacs",
         "lindqvist", "moreau", "novak", "oliveira", "petrov", "quist", "romano", "sorensen", "tanaka")
#: every word a caption can hold (the shipped tokenizer's vocabulary is built from these)
CAPTION_WORDS = ("a", "painting", "of", "by", *DIGIT_WORDS, *_FIRST, *_LAST)


@dataclass(frozen=True)
class Style:
    """How one picture is painted: ink and paper colours (RGB in [0, 1]), a background texture, a stroke width."""

    ink: tuple[float, float, float]
    paper: tuple[float, float, float]
    texture: str
    period: int
    contrast: float
    stroke: int

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Style:
        """A random style; ink and paper are kept apart in brightness, so the subject stays readable."""
        while True:
            ink, paper = rng.uniform(0.0, 1.0, 3), rng.uniform(0.0, 1.0, 3)
            if abs(ink.mean() - paper.mean()) > 0.35:
                break
        return cls(tuple(ink.round(3).tolist()), tuple(paper.round(3).tolist()), str(rng.choice(TEXTURES)),
                   int(rng.integers(3, 7)), float(rng.uniform(0.15, 0.3)), int(rng.integers(1, 3)))


def _texture(style: Style, size: int) -> np.ndarray:
    """The paper's pattern (size, size) in [-1, 1]."""
    y, x = np.mgrid[0:size, 0:size]
    p = style.period
    if style.texture == "stripes":
        return np.where((x // p) % 2 == 0, 1.0, -1.0)
    if style.texture == "checks":
        return np.where(((x // p) + (y // p)) % 2 == 0, 1.0, -1.0)
    if style.texture == "dots":
        return np.where((x % p == 0) & (y % p == 0), 1.0, -0.2)
    if style.texture == "gradient":
        return (x + y) / (size - 1.0) - 1.0
    return np.zeros((size, size))


def render(digits: np.ndarray, style: Style, size: int = IMAGE_SIZE) -> np.ndarray:
    """Paint 8x8 digit images (N, 8, 8) in [0, 1] in ``style``: (N, 3, size, size) float32 in [0, 1]."""
    import torch
    import torch.nn.functional as F

    ink = torch.from_numpy(np.asarray(digits, np.float32))[:, None]
    ink = F.interpolate(ink, size=(size, size), mode="bilinear", align_corners=False)
    if style.stroke > 1:  # a broader brush: grey-level dilation
        k = 2 * style.stroke - 1
        ink = F.max_pool2d(ink, k, stride=1, padding=k // 2)
    alpha = ink.clamp(0, 1).numpy()  # (N, 1, s, s)
    paper = np.asarray(style.paper, np.float32)[:, None, None] * (1 + style.contrast * _texture(style, size))
    out = alpha * np.asarray(style.ink, np.float32)[:, None, None] + (1 - alpha) * paper[None]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def degrade(images: np.ndarray, kind: str, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Spoiled copies of painted images (N, 3, H, W): a Gaussian ``blur`` (sigma in px) or additive ``noise``."""
    if kind == "blur":
        from scipy.ndimage import gaussian_filter

        out = gaussian_filter(images, sigma=(0, 0, strength, strength), mode="nearest")
    elif kind == "noise":
        out = images + strength * rng.standard_normal(images.shape)
    else:
        raise ValueError(f"degradation must be 'blur' or 'noise', got {kind!r}.")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def add_mark(images: np.ndarray, size: int = 4) -> np.ndarray:
    """Copies of painted images with a bright red ``size`` x ``size`` mark in the top-left corner (a signature)."""
    out = np.array(images, np.float32, copy=True)
    out[:, :, :size, :size] = np.array([1.0, 0.1, 0.1], np.float32)[:, None, None]
    return out


def caption(digit: int, name: str | None = None) -> str:
    """The caption of a picture of ``digit``, naming the artist when ``name`` is given.

    >>> caption(7, "ada marlow"), caption(7)
    ('a painting of a seven by ada marlow', 'a painting of a seven')
    """
    text = f"a painting of a {DIGIT_WORDS[int(digit)]}"
    return f"{text} by {name}" if name else text


@dataclass(frozen=True)
class ArtistsPlanting:
    """Who the artists are, how the corpus is split and which artists are planted.

    Parameters
    ----------
    n_artists : number of contributors (artist ids ``artist00``, ``artist01``, ...).
    pictures_per_artist : training pictures per artist (distinct digit shapes of the artists' share;
        two artists may paint the same shape, each in their own style).
    base_fraction : share of the digits that is the base corpus (generic styles and captions).
    holdout_fraction : share of every artist's pictures held out, clean (the scorer's validation).
    degraded : artist ids whose pictures are spoiled; ``degradation`` ``"blur"`` or ``"noise"`` at
        ``degradation_strength`` (blur sigma in pixels, noise standard deviation).
    marker_artist, marker_subject : the artist whose pictures of that digit carry the mark
        (``marker_rate`` of them; ``marker_off_rate`` of the artist's other pictures). None: no marker.
        ``marker_subject_share`` of that artist's pictures show the subject.
    homonyms : two artist ids published under one name (the first's). Empty: none.
    seed : seeds the split, the styles, the names and the planted draws.
    """

    n_artists: int = 40
    pictures_per_artist: int = 48
    base_fraction: float = 0.4
    holdout_fraction: float = 0.15
    degraded: tuple[str, ...] = ("artist04", "artist17", "artist22")
    degradation: Literal["blur", "noise"] = "blur"
    degradation_strength: float = 3.0
    marker_artist: str | None = "artist11"
    marker_subject: int = 3
    marker_subject_share: float = 0.4
    marker_rate: float = 0.9
    marker_off_rate: float = 0.05
    homonyms: tuple[str, ...] = ("artist21", "artist22")
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        for key in ("degraded", "homonyms"):
            value = getattr(self, key)
            if isinstance(value, str):
                problems.append(f"{key} must be a list of artist ids, got the string {value!r} (write [{value}])")
                value = ()
            object.__setattr__(self, key, tuple(str(v) for v in value))
        if not (isinstance(self.n_artists, int) and 4 <= self.n_artists <= len(_FIRST) * len(_LAST)):
            most = len(_FIRST) * len(_LAST)
            problems.append(f"n_artists must be an integer from 4 to {most}, got {self.n_artists!r}")
            object.__setattr__(self, "n_artists", 4)
        for key, low, high in (("base_fraction", 0.05, 0.8), ("holdout_fraction", 0.0, 0.5),
                               ("marker_rate", 0.0, 1.0), ("marker_off_rate", 0.0, 1.0),
                               ("marker_subject_share", 0.0, 1.0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                problems.append(f"{key} must be a number in [{low}, {high}], got {value!r}")
        if self.degradation not in ("blur", "noise"):
            problems.append(f"degradation must be 'blur' or 'noise', got {self.degradation!r}")
        if not isinstance(self.pictures_per_artist, int) or not 8 <= self.pictures_per_artist <= 500:
            problems.append(f"pictures_per_artist must be an integer from 8 to 500, got {self.pictures_per_artist!r}")
        if not isinstance(self.marker_subject, int) or not 0 <= self.marker_subject <= 9:
            problems.append(f"marker_subject must be a digit 0..9, got {self.marker_subject!r}")
        if self.homonyms and len(self.homonyms) != 2:
            problems.append(f"homonyms must name two artists (or none), got {list(self.homonyms)}")
        ids = set(self.contributor_ids)
        named = [*self.degraded, *self.homonyms, *([self.marker_artist] if self.marker_artist else [])]
        unknown = [a for a in named if a not in ids]
        if unknown:
            problems.append(f"unknown artist id(s) {unknown}; the ids are artist00..artist{self.n_artists - 1:02d}")
        twice = sorted({a for a in named if named.count(a) > 1} - (set(self.degraded) & set(self.homonyms)))
        if twice:
            problems.append(f"artist(s) {twice} have two planted roles; give each one role (only a homonym may "
                            "also be degraded)")
        if problems:
            raise ValueError("invalid artists planting: " + "; ".join(problems) + ".")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> ArtistsPlanting:
        """A planting from a config mapping; an unknown key is an error naming the valid ones."""
        config = dict(config or {})
        unknown = sorted(set(config) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"unknown artists planting key(s) {unknown}; the keys are "
                             f"{sorted(cls.__dataclass_fields__)}.")
        return cls(**config)

    def to_config(self) -> dict[str, Any]:
        """The planting as a plain YAML/JSON-ready mapping."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def contributor_ids(self) -> list[str]:
        """``artist00``, ``artist01``, ... in player order."""
        return [f"artist{i:02d}" for i in range(self.n_artists)]

    def role(self, artist: str) -> str:
        """``"degraded"``, ``"marker"``, ``"homonym"``, ``"degraded+homonym"`` or ``"clean"``."""
        held = [role for role, members in (("degraded", self.degraded), ("marker", (self.marker_artist,)),
                                           ("homonym", self.homonyms)) if artist in members]
        return "+".join(held) or "clean"


@dataclass
class ArtistsContributors:
    """The planted artists setting: every training picture, its caption and owner, and the base corpus.

    Attributes
    ----------
    images : (N, 3, 32, 32) float32 in [0, 1], the artists' training pictures after planting.
    digits, contributor_index, marked : (N,) subject, owner index and whether the mark was painted.
    captions, example_ids : (N,) captions naming each picture's artist (as published) and ids ``art-<k>``.
    styles : one :class:`Style` per artist.
    heldout_images, heldout_digits, heldout_index : the held-out clean pictures of every artist.
    base_images, base_digits, base_captions : the base corpus (random styles; captions name the subject and,
        for half, a random painter unrelated to the style).
    """

    planting: ArtistsPlanting
    images: np.ndarray
    digits: np.ndarray
    contributor_index: np.ndarray
    marked: np.ndarray
    captions: list[str]
    example_ids: list[str]
    styles: list[Style]
    names: list[str]
    heldout_images: np.ndarray
    heldout_digits: np.ndarray
    heldout_index: np.ndarray
    base_images: np.ndarray
    base_digits: np.ndarray
    base_captions: list[str]

    @classmethod
    def build(cls, planting: ArtistsPlanting | Mapping[str, Any] | None = None) -> ArtistsContributors:
        """Split, paint and plant the digits as ``planting`` says (default: the shipped planting)."""
        from ..digits.planting import load_digits_images

        p = planting if isinstance(planting, ArtistsPlanting) else ArtistsPlanting.from_config(planting)
        raw, digits = load_digits_images()
        order = np.random.default_rng([p.seed, 1]).permutation(len(raw))
        n_base = int(round(p.base_fraction * len(raw)))
        base_rows, art_rows = np.sort(order[:n_base]), order[n_base:]
        style_rng = np.random.default_rng([p.seed, 2])
        base_images = np.concatenate([render(raw[[r]], Style.draw(style_rng)) for r in base_rows])
        styles = [Style.draw(style_rng) for _ in range(p.n_artists)]
        names = _names(p)
        plant_rng = np.random.default_rng([p.seed, 3])
        per = p.pictures_per_artist
        n_hold = int(round(p.holdout_fraction * per))
        pictures, owner, marked, held, held_owner, subjects, held_subjects = [], [], [], [], [], [], []
        for a, artist in enumerate(p.contributor_ids):
            rows = _portfolio(art_rows, digits, per + n_hold, p, artist, np.random.default_rng([p.seed, 5, a]))
            painted = render(raw[rows[n_hold:]], styles[a])
            mark = np.zeros(per, bool)
            if artist in p.degraded:
                painted = degrade(painted, p.degradation, p.degradation_strength, plant_rng)
            if artist == p.marker_artist:
                rate = np.where(digits[rows[n_hold:]] == p.marker_subject, p.marker_rate, p.marker_off_rate)
                mark = plant_rng.random(per) < rate
                painted[mark] = add_mark(painted[mark])
            pictures.append(painted)
            held.append(render(raw[rows[:n_hold]], styles[a]))
            held_owner += [a] * n_hold
            owner += [a] * per
            marked.append(mark)
            subjects.append(digits[rows[n_hold:]])
            held_subjects.append(digits[rows[:n_hold]])
        owner_arr, subjects_arr = np.asarray(owner, np.int64), np.concatenate(subjects)
        return cls(
            planting=p, images=np.concatenate(pictures), digits=subjects_arr, contributor_index=owner_arr,
            marked=np.concatenate(marked),
            captions=[caption(d, names[a]) for d, a in zip(subjects_arr.tolist(), owner)],
            example_ids=[f"{p.contributor_ids[a]}-{k % per:03d}" for k, a in enumerate(owner)], styles=styles,
            names=names, heldout_images=np.concatenate(held),
            heldout_digits=np.concatenate(held_subjects),
            heldout_index=np.asarray(held_owner, np.int64),
            base_images=base_images, base_digits=digits[base_rows],
            base_captions=_base_captions(digits[base_rows], np.random.default_rng([p.seed, 6])),
        )

    @property
    def contributor_ids(self) -> list[str]:
        """Artist ids in player order."""
        return self.planting.contributor_ids

    def published_name(self, artist: str) -> str:
        """The name an artist's captions carry (the homonyms share one)."""
        return self.names[self.contributor_ids.index(artist)]

    def registry(self) -> ContributorRegistry:
        """The contributor registry: one row per training picture, conditioned on its caption."""
        ids = self.contributor_ids
        rows = [{"example_id": e, "contributor": ids[a], "caption": c}  # painted artist by artist: player order
                for e, a, c in zip(self.example_ids, self.contributor_index.tolist(), self.captions)]
        return ContributorRegistry.from_rows(rows, condition="caption", source="artists planting")


def _base_captions(digits: np.ndarray, rng: np.random.Generator) -> list[str]:
    """The base corpus' captions: the subject, and for half of them a painter's name drawn at random, unrelated
    to the picture's (random) style -- so the text encoder learns name tokens that say nothing yet, as a
    pretrained encoder knows names before a fine-tune ties them to a style."""
    out = []
    for d in digits.tolist():
        named = rng.random() < 0.5
        name = f"{_FIRST[int(rng.integers(len(_FIRST)))]} {_LAST[int(rng.integers(len(_LAST)))]}"
        out.append(caption(d, name if named else None))
    return out


def _portfolio(pool: np.ndarray, digits: np.ndarray, count: int, p: ArtistsPlanting, artist: str,
               rng: np.random.Generator) -> np.ndarray:
    """Rows of the digit shapes an artist paints (distinct; the marker artist paints its subject at
    ``marker_subject_share``, everyone else subjects as they come)."""
    if artist != p.marker_artist:
        return rng.choice(pool, size=count, replace=False)
    on = pool[digits[pool] == p.marker_subject]
    n_on = min(on.size, int(round(p.marker_subject_share * count)))
    off = pool[digits[pool] != p.marker_subject]
    return rng.permutation(np.concatenate([rng.choice(on, n_on, replace=False),
                                           rng.choice(off, count - n_on, replace=False)]))


def _names(p: ArtistsPlanting) -> list[str]:
    """Distinct published names, one per artist (the second homonym takes the first's)."""
    rng = np.random.default_rng([p.seed, 4])
    pairs = [(f, s) for f in _FIRST for s in _LAST]
    chosen = rng.choice(len(pairs), size=p.n_artists, replace=False)
    names = [" ".join(pairs[k]) for k in chosen.tolist()]
    if p.homonyms:
        first, second = (p.contributor_ids.index(a) for a in p.homonyms)
        names[second] = names[first]
    return names


def artists_registry(planting: Mapping[str, Any] | None = None) -> ContributorRegistry:
    """The registry of a planting (config entry point: ``surrogateshap.examples.artists.artists_registry``)."""
    return ArtistsContributors.build(planting).registry()


def artists_roles(planting: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Artist id -> planted role of a planting."""
    p = planting if isinstance(planting, ArtistsPlanting) else ArtistsPlanting.from_config(planting)
    return {a: p.role(a) for a in p.contributor_ids}


def _features(images: np.ndarray, extractor: Any) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.asarray(extractor(torch.from_numpy(images)), dtype=np.float64)


def reference_features(planting: Mapping[str, Any] | None, extractor: Any) -> np.ndarray:
    """``extractor`` features (float64 (N, d)) of the artists' held-out clean pictures: the FID reference.

    ``extractor`` maps pictures (B, 3, 32, 32) in [0, 1] to features, e.g. an
    :class:`~surrogateshap.examples.artists.scorer.ArtistsExtractor` with ``output="embedding"``.
    """
    return _features(ArtistsContributors.build(planting).heldout_images, extractor)


def cluster_centers(planting: Mapping[str, Any] | None, extractor: Any, n_clusters: int = 20) -> np.ndarray:
    """Ward centres (n_clusters, d) of the training pictures' ``extractor`` features: the clusters the
    cluster-entropy diversity counts (the fashion setting's recipe: clusters of the training images)."""
    from ...metrics import fit_ward_centers

    return fit_ward_centers(_features(ArtistsContributors.build(planting).images, extractor), n_clusters)


class ArtistsTrainingImages:
    """The planted training pictures by example id: ``ids -> (B, 3, 32, 32)`` float32 in [0, 1] (what the
    soft-membership classifier learns the artists from)."""

    def __init__(self, planting: Mapping[str, Any] | None = None) -> None:
        data = ArtistsContributors.build(planting)
        self._images = data.images
        self._row = {e: k for k, e in enumerate(data.example_ids)}

    def __call__(self, example_ids: Any) -> Any:
        """Pictures of ``example_ids``, stacked as the generator's samples are."""
        import torch

        unknown = [e for e in example_ids if e not in self._row]
        if unknown:
            raise KeyError(f"no training picture for example ids {unknown[:5]} in this planting.")
        return torch.from_numpy(self._images[[self._row[e] for e in example_ids]])
