"""Paired scorers (generated image vs. its source training image) and the HF image-embedding extractor.

A stub caption backend (images drawn from each sample's generator), PNG source images written
to tmp, and a tiny randomly initialised CLIP vision model saved to tmp: nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from surrogateshap.contributors import ContributorRegistry
from surrogateshap.generation import (
    GenerationBackend,
    ImageFolderSource,
    SamplingPlan,
    SubsetConditionedGenerator,
    collate_plan_rows,
    generate_bank,
    sample_seed,
)

SIZE = 8
pytestmark = pytest.mark.usefixtures("one_thread")


class StubCaptionBackend(GenerationBackend):
    """Caption-conditioned stand-in: sample b is uniform noise drawn from ``generators[b]``."""

    condition_kind = "caption"

    def generate(self, conditions, generators, guidance_scale, num_inference_steps):
        return torch.stack([torch.rand(3, SIZE, SIZE, generator=g) for g in generators])


def stub_image(seed: int) -> torch.Tensor:
    return torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(int(seed)))


class MeanAbsDiff(nn.Module):
    """A paired scorer: mean absolute pixel difference per pair."""

    def forward(self, generated: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        return (generated - source).abs().mean(dim=(1, 2, 3))


def brightness(images: torch.Tensor) -> torch.Tensor:
    return images.mean(dim=(1, 2, 3))


def caption_registry() -> ContributorRegistry:
    rows = [{"example_id": f"a{i}", "contributor": "a", "caption": f"alpha caption {i}"} for i in range(3)]
    rows += [{"example_id": f"b{i}", "contributor": "b", "caption": f"beta caption {i}"} for i in range(2)]
    rows += [{"example_id": "c0", "contributor": "c", "caption": "alpha caption 0"}]  # a caption shared with a0
    rows.insert(2, {"example_id": "b9", "contributor": "b", "caption": "beta caption 9"})  # interleaved file order
    return ContributorRegistry.from_rows(rows)


def write_sources(root, registry: ContributorRegistry) -> dict[str, np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    pixels = {}
    for ex in registry.examples:
        img = rng.integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / f"{ex.example_id}.png")
        pixels[ex.example_id] = img
    return pixels


# ----------------------------------------------------------------------------- the plan
def test_caption_rows_carry_their_example_and_keep_the_old_draw():
    registry = caption_registry()
    plan = SamplingPlan(registry, 7, seed=5)
    by_id = {ex.example_id: ex for ex in registry.examples}
    for i in range(len(plan)):
        row = plan[i]
        ex = by_id[row["example_id"]]
        assert ex.contributor == row["contributor"] and ex.condition == row["condition"]
        # the rule before example ids: a caption drawn uniformly over the contributor's captions
        seed = sample_seed(5, row["contributor"], row["sample_index"])
        captions = registry.captions(row["contributor"])
        old = captions[int(np.random.default_rng(seed).integers(len(captions)))]
        assert row["seed"] == seed and row["condition"] == old
    assert {plan[i]["example_id"] for i in range(len(plan))} >= {"a0", "a1", "a2", "c0"}
    batch = collate_plan_rows([plan[i] for i in (0, 8)])
    assert batch["example_id"] == [plan[0]["example_id"], plan[8]["example_id"]]


def test_label_rows_have_no_example_and_collate_passes_it_through():
    rows = [{"example_id": i, "contributor": f"c{i % 2}", "label": i} for i in range(4)]
    registry = ContributorRegistry.from_rows(rows)
    plan = SamplingPlan(registry, 2)
    assert plan[0]["example_id"] is None
    assert collate_plan_rows([plan[0], plan[1]])["example_id"] == [None, None]
    row = {k: v for k, v in plan[0].items() if k != "example_id"}  # a row without the key
    assert collate_plan_rows([row])["example_id"] == [None]


# ----------------------------------------------------------------------------- the predict loop
@pytest.mark.parametrize("batch_invariant", [True, False])
def test_paired_scores_compare_each_sample_with_its_source_png(tmp_path, batch_invariant):
    registry = caption_registry()
    pixels = write_sources(tmp_path / "images", registry)
    plan = SamplingPlan(registry, 3, seed=1)
    module = SubsetConditionedGenerator(
        StubCaptionBackend(), {"brightness": brightness}, paired_scorers={"mad": MeanAbsDiff()},
        source_images=ImageFolderSource(tmp_path / "images"), batch_invariant_extractors=batch_invariant,
    )
    rows = [plan[i] for i in range(len(plan))]
    out = module.predict_step(collate_plan_rows(rows), 0)
    assert set(out["features"]) == {"brightness", "mad"}
    assert out["features"]["mad"].shape == (len(rows),) and out["features"]["mad"].dtype == np.float32
    for b, row in enumerate(rows):
        source = torch.from_numpy(pixels[row["example_id"]]).permute(2, 0, 1).float() / 255
        expected = float((stub_image(row["seed"]) - source).abs().mean())
        assert out["features"]["mad"][b] == pytest.approx(expected, abs=1e-6)


def test_generate_bank_stores_paired_scores(tmp_path):
    registry = caption_registry()
    write_sources(tmp_path / "images", registry)
    plan = SamplingPlan(registry, 2, seed=0)
    source = ImageFolderSource(tmp_path / "images")
    bank = generate_bank(
        StubCaptionBackend(), plan, {"brightness": brightness}, tmp_path / "bank", batch_size=3,
        paired_scorers={"mad": MeanAbsDiff()}, source_images=source,
        trainer_kwargs={"accelerator": "cpu", "enable_progress_bar": False},
    )
    expected = [
        float((stub_image(plan[i]["seed"]) - source([plan[i]["example_id"]])[0]).abs().mean()) for i in range(len(plan))
    ]
    np.testing.assert_allclose(bank["mad"], expected, atol=1e-6)


def test_paired_scorer_errors(tmp_path):
    registry = caption_registry()
    write_sources(tmp_path / "images", registry)
    (tmp_path / "images" / "b9.png").unlink()
    with pytest.raises(ValueError, match="source_images"):
        SubsetConditionedGenerator(StubCaptionBackend(), {"b": brightness}, paired_scorers={"mad": MeanAbsDiff()})
    module = SubsetConditionedGenerator(
        StubCaptionBackend(), {"brightness": brightness}, paired_scorers={"mad": MeanAbsDiff()},
        source_images=ImageFolderSource(tmp_path / "images"),
    )
    plan = SamplingPlan(registry, 8, seed=0)
    rows = [plan[i] for i in range(len(plan)) if plan[i]["example_id"] == "b9"][:1]
    assert rows, "the plan should draw b9 at least once"
    with pytest.raises(FileNotFoundError, match=r"b9\.png.*\{example_id\}\.png"):
        module.predict_step(collate_plan_rows(rows), 0)
    no_ids = collate_plan_rows([{**plan[0], "example_id": None}])
    with pytest.raises(ValueError, match="example_id"):
        module.predict_step(no_ids, 0)
    with pytest.raises(ValueError, match="both extractors and paired scorers"):
        SubsetConditionedGenerator(StubCaptionBackend(), {"mad": brightness}, paired_scorers={"mad": MeanAbsDiff()},
                                   source_images=ImageFolderSource(tmp_path / "images"))


def test_image_folder_source_converts_and_resizes(tmp_path):
    Image.fromarray(np.full((4, 6), 128, dtype=np.uint8), mode="L").save(tmp_path / "grey.png")
    Image.fromarray(np.zeros((5, 5, 4), dtype=np.uint8), mode="RGBA").save(tmp_path / "rgba.png")
    images = ImageFolderSource(tmp_path, size=(3, 7))(["grey", "rgba"])
    assert images.shape == (2, 3, 3, 7) and images.dtype == torch.float32
    torch.testing.assert_close(images[0], torch.full((3, 3, 7), 128 / 255))
    with pytest.raises(ValueError, match="size"):
        ImageFolderSource(tmp_path)(["grey", "rgba"])  # different sizes cannot stack
    with pytest.raises(ValueError, match="example_id"):
        ImageFolderSource(tmp_path, pattern="fixed.png")


# ----------------------------------------------------------------------------- HFImageEmbedding
def tiny_clip_vision(path, processor: bool):
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=16, intermediate_size=24, num_hidden_layers=1, num_attention_heads=2, image_size=16,
        patch_size=8, projection_dim=12,
    )
    model = CLIPVisionModelWithProjection(config).eval()
    model.save_pretrained(path)
    if processor:
        CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}).save_pretrained(path)
    return model


@pytest.mark.parametrize("processor", [True, False])
def test_hf_image_embedding_matches_the_model(tmp_path, processor):
    from surrogateshap.metrics import HFImageEmbedding

    model = tiny_clip_vision(tmp_path / "clip", processor)
    images = torch.rand(5, 3, 20, 24, generator=torch.Generator().manual_seed(1))
    embed = HFImageEmbedding(tmp_path / "clip", kind="clip", batch_size=2)
    out = embed(images)
    assert out.shape == (5, 12) and out.dtype == torch.float32 and embed.embed_dim == 12
    pixels = embed.preprocess(images)
    assert pixels.shape == (5, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(out, model(pixel_values=pixels).image_embeds, rtol=1e-5, atol=1e-6)
    normalized = HFImageEmbedding(tmp_path / "clip", kind="clip", normalize=True)(images)
    torch.testing.assert_close(normalized, torch.nn.functional.normalize(out, dim=-1))
    # "auto": AutoModel (CLIPVisionModel here), its pooled output
    auto = HFImageEmbedding(tmp_path / "clip", kind="auto")
    with torch.no_grad():
        pooled = model.vision_model(pixel_values=auto.preprocess(images)).pooler_output
    torch.testing.assert_close(auto(images), pooled, rtol=1e-5, atol=1e-6)
    assert auto.embed_dim == 16
    # a bf16 model (precision="bf16-true") still returns float32
    assert embed.to(torch.bfloat16)(images).dtype == torch.float32


def test_hf_image_embedding_missing_folder_says_what_to_put_there(tmp_path):
    from surrogateshap.metrics import HFImageEmbedding

    for kind in ("clip", "auto"):
        with pytest.raises(FileNotFoundError) as err:
            HFImageEmbedding(tmp_path / "no_model_here", kind=kind)
        message = str(err.value)
        assert str(tmp_path / "no_model_here") in message and "save_pretrained" in message
        assert "model_path" in message and "config.json" in message
    with pytest.raises(ValueError, match="kind"):
        HFImageEmbedding(tmp_path, kind="blip")
