"""Stable Diffusion and FLUX backends end to end on tiny offline pipelines (32 px, 2 steps)."""

from __future__ import annotations

import pytest
import torch
from tiny_pipelines import save_random_lora, save_tiny_flux, save_tiny_sd, tiny_flux_pipeline, tiny_sd_pipeline

from surrogateshap.generation.backends.base import GenerationBackend
from surrogateshap.generation.backends.flux import Flux
from surrogateshap.generation.backends.stable_diffusion import StableDiffusion

pytest.importorskip("peft")
pytestmark = pytest.mark.filterwarnings("ignore")

STEPS = 2
ATOL = 1e-4  # batched matmuls may differ from unbatched ones in the last float bits


def generators(*seeds: int) -> list[torch.Generator]:
    """One fresh CPU generator per sample."""
    return [torch.Generator().manual_seed(s) for s in seeds]


@pytest.fixture(scope="module")
def sd_paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("sd")
    model = save_tiny_sd(root / "model")
    lora = save_random_lora(tiny_sd_pipeline(), root / "lora", target="unet")
    return model, lora


@pytest.fixture(scope="module")
def flux_paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("flux")
    model = save_tiny_flux(root / "model")
    lora = save_random_lora(tiny_flux_pipeline(), root / "lora", target="transformer")
    return model, lora


CASES = {
    "sd": (StableDiffusion, "sd_paths", 7.5, {}),
    "flux": (Flux, "flux_paths", 3.5, {"max_sequence_length": 16}),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    cls, paths_fixture, guidance, extra = CASES[request.param]
    model, lora = request.getfixturevalue(paths_fixture)
    base = cls.from_pretrained(model, resolution=32, **extra)
    tuned = cls.from_pretrained(model, lora_path=lora, resolution=32, **extra)
    return dict(cls=cls, model=model, lora=lora, guidance=guidance, extra=extra, base=base, tuned=tuned)


def test_backend_interface_and_modules(case):
    backend = case["base"]
    assert isinstance(backend, GenerationBackend)
    assert backend.condition_kind == "caption"
    assert backend.base_model and not case["tuned"].base_model
    children = dict(backend.named_children())
    assert "vae" in children and "text_encoder" in children
    assert ("unet" if case["cls"] is StableDiffusion else "transformer") in children
    # the pipeline uses the registered modules themselves, so Trainer moves reach it
    assert all(getattr(backend.pipeline, name) is module for name, module in children.items())
    assert not any(p.requires_grad for p in backend.parameters())


def test_generate_shapes_seeds_prompts_and_batch_independence(case):
    backend, w = case["base"], case["guidance"]
    assert backend.batch_invariant
    images = backend.generate(["a cat", "a red dog", "a cat"], generators(0, 1, 0), w, STEPS)
    assert images.shape == (3, 3, 32, 32) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    # same prompt and seed -> the same image, bit for bit, whatever the batch
    assert torch.equal(images[0], images[2])
    alone = backend.generate(["a red dog"], generators(1), w, STEPS)
    assert torch.equal(alone[0], images[1])
    # another prompt with the same seed -> another image: prompts reach the text encoder
    other_prompt = backend.generate(["a blue boat"], generators(0), w, STEPS)
    assert (other_prompt[0] - images[0]).abs().max() > 1e-3, "the prompt does not reach the text encoder"
    other_seed = backend.generate(["a cat"], generators(5), w, STEPS)
    assert (other_seed[0] - images[0]).abs().max() > 1e-3
    # one batched pipeline call: the same images up to last-bit rounding
    backend.batch_invariant = False
    try:
        batched = backend.generate(["a cat", "a red dog"], generators(0, 1), w, STEPS)
    finally:
        backend.batch_invariant = True
    torch.testing.assert_close(batched, images[:2], atol=ATOL, rtol=0)


def test_guidance_scale_reaches_the_pipeline(case):
    backend = case["base"]
    low = backend.generate(["a cat"], generators(2), 1.5, STEPS)
    high = backend.generate(["a cat"], generators(2), case["guidance"] * 2, STEPS)
    assert (low - high).abs().max() > 1e-4


def test_lora_changes_images_and_base_model_ignores_it(case):
    w = case["guidance"]
    base = case["base"].generate(["a cat"], generators(3), w, STEPS)
    tuned = case["tuned"].generate(["a cat"], generators(3), w, STEPS)
    assert case["tuned"].lora_path == case["lora"]
    assert (tuned - base).abs().max() > 1e-3, "the LoRA weights were not applied"
    again = case["cls"].base(case["model"], lora_path=case["lora"], resolution=32, **case["extra"])
    assert again.base_model and again.lora_path is None
    torch.testing.assert_close(again.generate(["a cat"], generators(3), w, STEPS), base, atol=ATOL, rtol=0)


def test_lora_folder_and_scale(case):
    backend = case["cls"].from_pretrained(
        case["model"], lora_path=case["lora"].parent, lora_scale=0.0, resolution=32, **case["extra"]
    )
    assert backend.lora_path == case["lora"]
    # an adapter at scale 0 is the base model
    w = case["guidance"]
    torch.testing.assert_close(
        backend.generate(["a cat"], generators(4), w, STEPS), case["base"].generate(["a cat"], generators(4), w, STEPS),
        atol=ATOL, rtol=0,
    )


def test_prompt_template_and_label_conditions(case):
    backend = case["base"]
    backend.prompt_template = "a painting by {}"
    try:
        assert backend.prompts(["Vincent"]) == ["a painting by Vincent"]
    finally:
        backend.prompt_template = "{}"
    with pytest.raises(TypeError, match="captions"):
        backend.generate([3], generators(0), case["guidance"], STEPS)


@pytest.mark.parametrize("cls", [StableDiffusion, Flux])
def test_missing_model_folder_names_it(tmp_path, cls):
    missing = tmp_path / "no-such-model"
    with pytest.raises(FileNotFoundError, match="no-such-model") as err:
        cls.from_pretrained(missing)
    assert "model_path" in str(err.value) and "save_pretrained" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        cls.from_pretrained(tmp_path / "empty")


def test_missing_lora_names_it(sd_paths, tmp_path):
    model, _ = sd_paths
    with pytest.raises(FileNotFoundError, match="missing_lora.safetensors") as err:
        StableDiffusion.from_pretrained(model, lora_path=tmp_path / "missing_lora.safetensors")
    assert "lora_path" in str(err.value)
    with pytest.raises(FileNotFoundError, match="pytorch_lora_weights.safetensors"):
        StableDiffusion.from_pretrained(model, lora_path=tmp_path)  # a folder without weights


def test_stable_diffusion_bank_through_the_predict_loop(sd_paths, tmp_path):
    """The backend inside Lightning's predict loop: batch sizes 1 and 3 write identical banks."""
    import numpy as np

    from surrogateshap.contributors import ContributorRegistry
    from surrogateshap.generation import SamplingPlan, generate_bank

    model, lora = sd_paths
    backend = StableDiffusion.from_pretrained(model, lora_path=lora, resolution=32)
    registry = ContributorRegistry.from_rows(
        [{"example_id": str(i), "contributor": f"artist{i % 2}", "caption": f"art {i}"} for i in range(4)],
        condition="caption",
    )
    plan = SamplingPlan(registry, samples_per_contributor=2, seed=0)

    def mean_colour(images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(2, 3))

    banks = [
        generate_bank(
            backend, plan, {"colour": mean_colour}, tmp_path / f"bank{bs}", guidance_scale=7.5,
            num_inference_steps=STEPS, batch_size=bs,
            trainer_kwargs={"accelerator": "cpu", "enable_progress_bar": False},
        )
        for bs in (1, 3)
    ]
    assert len(banks[0]) == len(plan) == 4
    for name in ("contributor_index", "sample_index", "seed", "colour"):
        assert np.array_equal(banks[0][name], banks[1][name]), name
    assert banks[0]["colour"].shape == (4, 3) and np.unique(banks[0]["colour"], axis=0).shape[0] == 4
