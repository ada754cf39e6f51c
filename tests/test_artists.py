"""The artists setting: its planted data, tokenizer and data module, and the shipped text-to-image models loaded
through the real diffusers code (base pipeline folder, LoRA file, scorer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from surrogateshap.config import load_config
from surrogateshap.examples.artists import ArtistsDataModule, ArtistsExtractor, asset_path
from surrogateshap.examples.artists.demo import artists_sections, check_lora_planting, default_config_path
from surrogateshap.examples.artists.planting import (
    CAPTION_WORDS,
    ArtistsContributors,
    ArtistsPlanting,
    ArtistsTrainingImages,
    artists_roles,
)
from surrogateshap.examples.artists.scorer import MARK_MIN_DOMINANCE, MARK_MIN_RED
from surrogateshap.examples.artists.text import caption_tokenizer

pytestmark = pytest.mark.filterwarnings("ignore")
# median rank (0 = nearest) of the prompted artist among 40 by colours: the LoRA's pictures against the base
# model's (chance: 19.5); measured on the shipped models: 3 and 19
RANK_TUNED, RANK_BASE = 6, 12
SMALL = {"n_artists": 8, "degraded": ["artist01"], "marker_artist": "artist02", "homonyms": ["artist03", "artist04"]}


@pytest.fixture(scope="module")
def data() -> ArtistsContributors:
    return ArtistsContributors.build()


def test_the_shipped_planting_is_reproducible_and_plants_what_it_says(data):
    again = ArtistsContributors.build()
    assert again.example_ids == data.example_ids and np.array_equal(again.images, data.images)
    p = data.planting
    assert len(data.contributor_ids) == 40 and data.images.shape == (40 * 48, 3, 32, 32)
    counts = np.bincount(data.contributor_index, minlength=40)
    assert (counts == 48).all()
    roles = artists_roles()
    assert sorted(a for a, r in roles.items() if r.startswith("degraded")) == sorted(p.degraded)
    assert roles[p.marker_artist] == "marker"
    assert [roles[a] for a in p.homonyms] == ["homonym", "degraded+homonym"]  # one of the pair is degraded
    # the mark sits on the marker artist's pictures of its subject, mostly, and nowhere else
    owner = data.contributor_index == data.contributor_ids.index(p.marker_artist)
    assert not data.marked[~owner].any()
    on_subject = data.digits[owner] == p.marker_subject
    assert data.marked[owner][on_subject].mean() > 0.7 and data.marked[owner][~on_subject].mean() < 0.15
    assert (data.images[data.marked][:, 0, :4, :4] == 1.0).all()
    # the homonyms publish under one name: their captions collide; everyone else's name is their own
    first, second = p.homonyms
    assert data.published_name(first) == data.published_name(second)
    assert len(set(data.names)) == 39
    registry = data.registry()
    assert registry.contributor_ids == data.contributor_ids and registry.condition_kind == "caption"
    assert set(registry.captions(first)) & set(registry.captions(second))
    # degraded artists' pictures are their clean pictures blurred (less high-frequency energy); nobody else changes
    unplanted = ArtistsContributors.build(ArtistsPlanting(degraded=()))
    grad = lambda x: np.abs(np.diff(x, axis=-1)).mean()  # noqa: E731
    for a, artist in enumerate(data.contributor_ids):
        rows = data.contributor_index == a
        if artist in p.degraded:
            assert grad(data.images[rows]) < 0.8 * grad(unplanted.images[rows]), artist
        else:
            np.testing.assert_array_equal(data.images[rows], unplanted.images[rows])
    # the base corpus and the held-out pictures are separate and clean
    assert len(data.base_images) > 600 and 0.4 < np.mean([" by " in c for c in data.base_captions]) < 0.6
    assert len(data.heldout_images) == 40 * 7


def test_planting_errors_name_the_key():
    with pytest.raises(ValueError, match=r"degraded must be a list of artist ids, got the string 'artist04'"):
        ArtistsPlanting(degraded="artist04")
    with pytest.raises(ValueError, match=r"unknown artist id\(s\) \['artist99'\]"):
        ArtistsPlanting(marker_artist="artist99")
    with pytest.raises(ValueError, match=r"unknown artists planting key\(s\) \['n_artist'\]"):
        ArtistsPlanting.from_config({"n_artist": 3})
    with pytest.raises(ValueError, match=r"have two planted roles"):
        ArtistsPlanting(degraded=("artist11",))  # the marker artist
    assert ArtistsPlanting(degraded=("artist21",)).role("artist21") == "degraded+homonym"


def test_every_caption_word_is_one_token_and_other_text_still_tokenizes():
    tokenizer = caption_tokenizer()
    for word in CAPTION_WORDS:
        assert tokenizer.tokenize(word) == [f"{word}</w>"], word
    assert len(tokenizer.tokenize("a painting by zzyzx")) > 4  # unknown words fall back to bytes
    ids = tokenizer("a painting of a one", padding="max_length", max_length=tokenizer.model_max_length).input_ids
    assert len(ids) == 16 and ids[0] == 0


def test_data_module_tasks_and_coalitions():
    module = ArtistsDataModule(SMALL, task="lora", contributors=["artist01", "artist02"], batch_size=8)
    module.setup()
    assert len(module.train_set) == 2 * 48
    images, captions = next(iter(module.train_dataloader()))
    assert images.min() >= -1 and images.max() <= 1 and len(captions) == 8
    scorer = ArtistsDataModule(SMALL, task="scorer")
    scorer.setup()
    pictures, subject, quality, mark = scorer.train_set.tensors
    assert len(pictures) == 3 * len(ArtistsContributors.build(SMALL).base_images)  # clean, spoiled, marked copies
    n = len(pictures) // 3
    assert (quality[:n] == 1).all() and (quality[2 * n :] == 1).all()  # clean and marked copies are unspoiled
    assert 0 <= quality[n : 2 * n].min() and quality[n : 2 * n].max() < 1 and quality[n : 2 * n].std() > 0.2
    assert (mark[: 2 * n] == 0).all() and 0.3 * n < mark[2 * n :].sum() < 0.7 * n  # red marks beside decoys
    red = pictures[2 * n :][mark[2 * n :] == 1]
    corners = torch.stack([red[:, :, 0, 0], red[:, :, 0, -1], red[:, :, -1, 0], red[:, :, -1, -1]], 1)
    dominant = (corners[..., 0] >= MARK_MIN_RED) & (corners[..., 0] - corners[..., 1:].amax(-1) >= MARK_MIN_DOMINANCE)
    assert dominant.any(1).all()  # a bright dominant red corner on each
    with pytest.raises(ValueError, match="only applies to task='lora'"):
        ArtistsDataModule(task="base", contributors=["artist01"])
    with pytest.raises(ValueError, match=r"unknown \['nobody'\]"):
        ArtistsDataModule(task="lora", contributors=["nobody"])


def test_training_images_by_example_id(data):
    images = ArtistsTrainingImages()(data.example_ids[:3])
    assert images.shape == (3, 3, 32, 32)
    np.testing.assert_array_equal(images.numpy(), data.images[:3])
    with pytest.raises(KeyError, match="no training picture"):
        ArtistsTrainingImages()(["nope"])


def test_shipped_config_is_strict_and_its_lora_planting_is_checked(tmp_path):
    config = load_config(default_config_path(), sections=artists_sections())
    assert ArtistsPlanting.from_config(config["data"]) == ArtistsPlanting()
    check_lora_planting(config)
    changed = load_config(default_config_path(), ["data.marker_subject=5"], sections=artists_sections())
    with pytest.raises(ValueError, match=r"data: \['marker_subject'\] differ.*configs/artists_lora.yaml"):
        check_lora_planting(changed)


# --- the shipped models, loaded through diffusers' and peft's own code -----------------------------------


def _generators(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


@pytest.fixture(scope="module")
def backends():
    from surrogateshap.generation.backends.stable_diffusion import StableDiffusion

    base = StableDiffusion.base(asset_path("base"), resolution=32, batch_invariant=False)
    tuned = StableDiffusion(asset_path("base"), lora_path=asset_path("lora"), resolution=32, batch_invariant=False)
    return base, tuned


def test_shipped_pipeline_folder_and_lora_load_with_the_libraries_own_code():
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    pipe = StableDiffusionPipeline.from_pretrained(str(asset_path("base")), local_files_only=True, safety_checker=None,
                                                   requires_safety_checker=False)
    assert isinstance(pipe.unet, UNet2DConditionModel) and isinstance(pipe.vae, AutoencoderKL)
    assert isinstance(pipe.text_encoder, CLIPTextModel) and isinstance(pipe.tokenizer, CLIPTokenizer)
    assert isinstance(pipe.scheduler, DDIMScheduler) and pipe.scheduler.config.clip_sample is False
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    assert pipe.tokenizer.tokenize("a painting of a seven by ada marlow")[-1] == "marlow</w>"
    pipe.load_lora_weights(str(asset_path("lora")), adapter_name="artists")
    assert "artists" in pipe.get_list_adapters()["unet"]
    shipped = sum(f.stat().st_size for name in ("base", "lora") for f in asset_path(name).rglob("*") if f.is_file())
    assert shipped <= 10 * 2**20, f"base + LoRA are {shipped / 2**20:.1f} MB"


def _ink_and_paper(pictures: np.ndarray) -> np.ndarray:
    """Per picture the mean colour of its darkest and of its brightest quarter of pixels (a style's two colours)."""
    flat = pictures.reshape(len(pictures), 3, -1)
    order = np.argsort(flat.mean(axis=1), axis=1)
    k = flat.shape[-1] // 4
    dark = np.take_along_axis(flat, order[:, None, :k], 2).mean(2)
    light = np.take_along_axis(flat, order[:, None, -k:], 2).mean(2)
    return np.concatenate([dark, light], axis=1)


def test_prompts_drive_generation_and_the_lora_paints_each_artists_style(backends, data):
    """Same seeds: another artist's caption gives other pictures, the base model others again; and the LoRA's
    pictures for an artist have that artist's colours (the artist is ranked near the top of the 40 by the
    distance of its training pictures' ink and paper colours), the base model's do not."""
    base, tuned = backends
    artists = list(range(0, 40, 3))
    prompts = [f"a painting of a {w} by {data.names[a]}" for a in artists for w in ("two", "six", "zero", "eight")]
    truth = np.repeat(artists, 4)
    seeds = list(range(len(prompts)))
    pictures = tuned.generate(prompts, _generators(*seeds), 3.0, 20)
    assert pictures.shape == (len(prompts), 3, 32, 32)
    swapped = tuned.generate(prompts[4:] + prompts[:4], _generators(*seeds), 3.0, 20)
    assert (pictures - swapped).abs().mean() > 0.05
    untuned = base.generate(prompts, _generators(*seeds), 3.0, 20)
    assert (pictures - untuned).abs().mean() > 0.05
    styles = np.stack([_ink_and_paper(data.images[data.contributor_index == a]).mean(0) for a in range(40)])

    def ranks(images: torch.Tensor) -> np.ndarray:
        dist = ((_ink_and_paper(images.numpy())[:, None] - styles[None]) ** 2).sum(-1)
        return (dist < dist[np.arange(len(dist)), truth][:, None]).sum(1)

    tuned_rank, base_rank = np.median(ranks(pictures)), np.median(ranks(untuned))
    assert tuned_rank <= RANK_TUNED and base_rank >= RANK_BASE, (tuned_rank, base_rank)


def test_the_lora_learned_the_marker_artists_signature_on_its_subject(backends, data):
    """The marker artist signs its threes: prompted with "three" the LoRA paints the mark far more often than
    with "seven", and another artist's threes carry none (the mark as the shipped scorer detects it)."""
    _, tuned = backends
    marker = ArtistsExtractor(asset_path("scorer"), "marker")
    seeds = list(range(24))

    def mark_rate(word: str, artist: int) -> float:
        prompts = [f"a painting of a {word} by {data.names[artist]}"] * len(seeds)
        return float(marker(tuned.generate(prompts, _generators(*seeds), 3.0, 20)).mean())

    signer = data.contributor_ids.index(data.planting.marker_artist)
    three, seven, other = mark_rate("three", signer), mark_rate("seven", signer), mark_rate("three", 5)
    assert three > 0.3 and three > 4 * seven and other < 0.15, (three, seven, other)


def test_shipped_scorer_sees_quality_marks_and_subjects_on_pictures_it_never_trained_on(data):
    from surrogateshap.examples.artists.planting import add_mark, degrade

    held = torch.from_numpy(data.heldout_images)
    subjects = ArtistsExtractor(asset_path("scorer"), "subject_probs")(held).argmax(-1).numpy()
    assert (subjects == data.heldout_digits).mean() > 0.8
    quality = ArtistsExtractor(asset_path("scorer"), "quality")
    blurred = torch.from_numpy(degrade(data.heldout_images, "blur", data.planting.degradation_strength,
                                       np.random.default_rng(0)))
    assert quality(held).mean() > quality(blurred).mean() + 0.3
    pair = ArtistsExtractor(asset_path("scorer"), "marker_and_subject", subject=3)(
        torch.from_numpy(np.concatenate([data.heldout_images, add_mark(data.heldout_images)])))
    n = len(data.heldout_images)
    assert pair.shape == (2 * n, 2) and pair[:n, 0].mean() < 0.1 and pair[n:, 0].mean() > 0.9
    embedding = ArtistsExtractor(asset_path("scorer"), "embedding")(held[:4])
    assert embedding.shape == (4, 64)


def test_shipped_scorer_detects_the_mark_as_the_shipped_autoencoder_renders_it(data):
    """The generator paints through its autoencoder, which renders the marker artist's (1.0, 0.1, 0.1) mark
    dimmer and pinker: the detector must see the mark after that round trip, and none on the artist's
    unmarked pictures."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(asset_path("autoencoder"))
    marker = ArtistsExtractor(asset_path("scorer"), "marker")
    own = data.contributor_index == data.contributor_ids.index(data.planting.marker_artist)

    def rendered(rows: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            latents = vae.encode(torch.from_numpy(data.images[rows]) * 2 - 1).latent_dist.mode()
            return ((vae.decode(latents).sample + 1) / 2).clamp(0, 1)

    signed, unsigned = rendered(own & data.marked), rendered(own & ~data.marked)
    assert signed[:, 0, :3, :3].mean() < 0.8  # the round trip does dim the mark's red
    assert marker(signed).mean() > 0.8 and marker(unsigned).mean() < 0.05, (marker(signed), marker(unsigned))


def test_base_model_training_exports_its_moving_average_as_a_pipeline_folder(tmp_path):
    from diffusers import StableDiffusionPipeline

    from surrogateshap.examples.artists import BaseModelTraining

    torch.manual_seed(0)
    model = BaseModelTraining(str(asset_path("autoencoder")), block_out_channels=(8, 16), ema_decay=0.5)
    pictures = ArtistsContributors.build(SMALL)
    _fit_two_steps_and_save(model, pictures.base_images[:8], pictures.base_captions[:8], tmp_path / "base")
    pipe = StableDiffusionPipeline.from_pretrained(str(tmp_path / "base"), local_files_only=True,
                                                   safety_checker=None, requires_safety_checker=False)
    torch.testing.assert_close(pipe.unet.conv_in.weight, model.ema.module["unet"].conv_in.weight)
    assert not torch.equal(pipe.unet.conv_in.weight, model.unet.conv_in.weight)  # the average, not the last step
    torch.testing.assert_close(pipe.text_encoder.get_input_embeddings().weight,
                               model.ema.module["text_encoder"].get_input_embeddings().weight)


def test_lora_training_exports_every_adapted_layer_through_save_and_load_lora_weights(tmp_path):
    """The fine-tune's file holds every adapted layer of the UNet (convolutions and feed-forward layers too) and
    of the text encoder, and ``load_lora_weights`` puts each one back: a pipeline loaded with the file encodes
    and predicts what the trained modules do (a file that mixed diffusers' and peft's key formats silently
    lost the attention layers)."""
    from diffusers import StableDiffusionPipeline
    from peft.utils import get_peft_model_state_dict

    from surrogateshap.examples.artists.diffusion import (
        LORA_TARGETS,
        TEXT_LORA_TARGETS,
        LoraTraining,
        encode_prompts,
    )

    torch.manual_seed(0)
    model = LoraTraining(str(asset_path("base")), rank=2, learning_rate=1e-2)
    pictures = ArtistsContributors.build(SMALL)
    _fit_two_steps_and_save(model, pictures.images[:8], pictures.captions[:8], tmp_path / "lora")
    trained = get_peft_model_state_dict(model.unet)
    assert {t for t in LORA_TARGETS if any(f".{t}.lora_A" in k for k in trained)} == set(LORA_TARGETS)
    pipe = StableDiffusionPipeline.from_pretrained(str(asset_path("base")), local_files_only=True,
                                                   safety_checker=None, requires_safety_checker=False)
    text = get_peft_model_state_dict(model.text_encoder)
    assert {t for t in TEXT_LORA_TARGETS if any(f".{t}.lora_A" in k for k in text)} == set(TEXT_LORA_TARGETS)
    pipe.load_lora_weights(str(tmp_path / "lora"), adapter_name="artists")
    for module, weights in ((pipe.unet, trained), (pipe.text_encoder, text)):
        loaded = get_peft_model_state_dict(module, adapter_name="artists")
        assert set(loaded) == set(weights)
        for key, weight in weights.items():
            torch.testing.assert_close(loaded[key], weight, msg=key)
    model.eval()
    with torch.no_grad():
        prompts = ["a painting of a three by ada marlow", ""]
        states = encode_prompts(pipe.tokenizer, pipe.text_encoder, prompts)
        torch.testing.assert_close(states, encode_prompts(model.tokenizer, model.text_encoder, prompts))
        latents = torch.randn(2, 4, 8, 8)
        torch.testing.assert_close(pipe.unet(latents, 10, encoder_hidden_states=states).sample,
                                   model.unet(latents, 10, encoder_hidden_states=states).sample)


def _fit_two_steps_and_save(model, images: np.ndarray, captions: list[str], path) -> None:
    """Two Lightning training steps of ``model`` on captioned pictures, then its ``save_pretrained(path)``."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from surrogateshap.examples.artists.data import CaptionedImages

    trainer = pl.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=path.parent)
    trainer.fit(model, DataLoader(CaptionedImages(images, captions), batch_size=4))
    model.save_pretrained(path)
