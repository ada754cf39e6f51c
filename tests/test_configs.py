"""The shipped configs resolve to the right classes once their paths point at tiny local models."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from test_extractors import FakeInception
from tiny_pipelines import save_random_lora, save_tiny_flux, save_tiny_sd, tiny_flux_pipeline, tiny_sd_pipeline
from torch import nn

from surrogateshap.config import (
    METRIC_SETTINGS,
    ConfigError,
    check_buildable,
    check_paths,
    instantiate,
    load_config,
    missing_paths,
    resolve_target,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
pytestmark = pytest.mark.filterwarnings("ignore")


def write_metadata(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


# --- the resolver itself -------------------------------------------------------------------------


def test_load_config_overrides_and_references(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "paths": {"root": "/data", "model": "${paths.root}/model"},
        "n": 3, "copy_n": "${n}", "node": {"class_path": "collections.OrderedDict", "init_args": {}},
    }))
    config = load_config(path, {"paths.root": "/other"})
    assert config["paths"]["model"] == "/other/model" and config["copy_n"] == 3
    assert load_config(path, ["n=5"])["copy_n"] == 5
    with pytest.raises(ConfigError, match="paths.modle"):
        load_config(path, {"paths.modle": "x"})
    path.write_text(yaml.safe_dump({"a": "${b.c}", "b": {}}))
    with pytest.raises(ConfigError, match="b.c"):
        load_config(path)
    path.write_text(yaml.safe_dump({"a": "${b}", "b": "${a}"}))
    with pytest.raises(ConfigError, match="cycle"):
        load_config(path)
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_instantiate_builds_nested_objects_and_names_bad_keys():
    node = {"class_path": "torch.nn.Sequential", "init_args": {}}
    assert isinstance(instantiate(node), nn.Sequential)
    built = instantiate({"a": {"class_path": "torch.nn.Linear", "init_args": {"in_features": 2, "out_features": 3}}})
    assert isinstance(built["a"], nn.Linear) and built["a"].out_features == 3
    assert resolve_target("surrogateshap.config.load_config") is load_config
    with pytest.raises(ConfigError, match="in_featurs"):
        instantiate({"class_path": "torch.nn.Linear", "init_args": {"in_featurs": 2, "out_features": 3}})
    with pytest.raises(ConfigError, match="out_features"):
        instantiate({"class_path": "torch.nn.Linear", "init_args": {"in_features": 2}})
    with pytest.raises(ConfigError, match="NoSuchClass"):
        instantiate({"class_path": "torch.nn.NoSuchClass"})
    with pytest.raises(ConfigError, match="no importable module"):
        instantiate({"class_path": "not_a_package_xyz.Thing"})
    with pytest.raises(ConfigError, match="init_arg"):
        instantiate({"class_path": "torch.nn.Linear", "init_arg": {}}, where="config.model")


@pytest.mark.parametrize("name", ["cifar20", "artbench_sd", "fashion_flux"])
def test_shipped_configs_list_their_files(name):
    config = load_config(CONFIGS / f"{name}.yaml")
    # nothing of it exists on this machine; arguments that are `${paths.x}` are reported once, as paths.x
    assert set(missing_paths(config)) == {f"paths.{key}" for key in config["paths"]}
    with pytest.raises(FileNotFoundError, match="paths.model_path"):
        check_paths(config)


# --- CIFAR-20 ----------------------------------------------------------------------------------


def test_cifar20_resolves_and_generates(tmp_path):
    from diffusers import UNet2DModel
    from surrogateshap.metrics import (
        CleanFIDInception,
        ContributorFID,
        ContributorInceptionScore,
        save_reference_statistics,
    )

    from surrogateshap.contributors import ContributorRegistry
    from surrogateshap.generation import SamplingPlan, generate_bank
    from surrogateshap.generation.backends.ddpm import ClassConditionalDDPM

    names = ["lamp", "lawn_mower", "leopard", "lion", "lizard", "otter", "palm_tree", "pear", "pickup_truck",
             "pine_tree", "plain", "plate", "poppy", "porcupine", "possum", "squirrel", "streetcar", "sunflower",
             "sweet_pepper", "table"]  # as the config's comment lists them
    assert ", ".join(names[:5]) in (CONFIGS / "cifar20.yaml").read_text()
    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4, num_class_embeds=21,
    )
    model = ClassConditionalDDPM(unet, "ddim").save_pretrained(tmp_path / "ddpm")
    inception = tmp_path / "inception-2015-12-05.pt"
    torch.jit.save(torch.jit.script(FakeInception().eval()), str(inception))
    reference = save_reference_statistics(tmp_path / "ref.npz", np.random.default_rng(0).normal(size=(64, 2048)))
    metadata = write_metadata(tmp_path / "meta.csv", [
        {"example_id": f"{c}-{k}", "contributor": name, "label": c} for c, name in enumerate(names) for k in range(2)
    ])
    config = load_config(CONFIGS / "cifar20.yaml", {
        "paths.metadata": str(metadata), "paths.model_path": str(model), "paths.inception_path": str(inception),
        "paths.reference": str(reference), "plan.samples_per_contributor": 1, "generation.num_inference_steps": 2,
    })
    check_paths(config)
    registry = instantiate(config["contributors"], "config.contributors")
    assert isinstance(registry, ContributorRegistry) and registry.contributor_ids == names
    gen = config["generation"]
    backend = instantiate(gen["backend"], "config.generation.backend")
    assert isinstance(backend, ClassConditionalDDPM) and backend.num_labels == 20
    assert type(backend.scheduler).__name__ == "DDIMScheduler"
    assert gen["guidance_scale"] == 1.4
    extractors = instantiate(gen["extractors"])
    assert isinstance(extractors["inception"], CleanFIDInception)
    assert extractors["inception_probs"].output == "probs"
    utilities = instantiate(config["utilities"], "config.utilities")
    assert isinstance(utilities["fid"], ContributorFID) and utilities["fid"].dim == 2048
    assert isinstance(utilities["inception_score"], ContributorInceptionScore)
    plan = SamplingPlan(registry, **config["plan"])
    bank = generate_bank(
        backend, plan, extractors, tmp_path / "bank", guidance_scale=gen["guidance_scale"],
        num_inference_steps=gen["num_inference_steps"], batch_size=8,
        trainer_kwargs={"accelerator": "cpu", "enable_progress_bar": False},
    )
    assert len(bank) == 20
    assert bank["inception"].shape == (20, 2048) and bank["inception_probs"].shape == (20, 1008)
    np.testing.assert_allclose(bank["inception_probs"].sum(axis=1), 1.0, rtol=1e-5)


# --- ArtBench (Stable Diffusion + LoRA) ---------------------------------------------------------


def test_artbench_sd_resolves(tmp_path):
    from surrogateshap.metrics import AestheticScorer, ContributorAestheticScore, LaionAestheticMLP
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from surrogateshap.generation.backends.stable_diffusion import StableDiffusion

    model = save_tiny_sd(tmp_path / "sd")
    lora = save_random_lora(tiny_sd_pipeline(), tmp_path / "lora", target="unet")
    clip = tmp_path / "clip"
    CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=1, image_size=32,
        patch_size=8, projection_dim=16,
    )).save_pretrained(clip)
    head = tmp_path / "head.pth"
    torch.save(LaionAestheticMLP(16).state_dict(), head)
    metadata = write_metadata(tmp_path / "meta.csv", [
        {"example_id": f"{a}-{k}", "contributor": a, "caption": a.replace("_", " ").title()}
        for a in ("vincent_van_gogh", "paul_gauguin", "paul_cezanne") for k in range(2)
    ])
    config = load_config(CONFIGS / "artbench_sd.yaml", {
        "paths.metadata": str(metadata), "paths.model_path": str(model), "paths.lora_path": str(lora),
        "paths.clip_path": str(clip), "paths.head_path": str(head),
    })
    check_paths(config)
    gen = config["generation"]
    backend = instantiate(gen["backend"], "config.generation.backend")
    assert isinstance(backend, StableDiffusion) and not backend.base_model and backend.lora_path == lora
    assert backend.resolution == 256 and gen["guidance_scale"] == 7.5 and gen["num_inference_steps"] == 100
    assert backend.prompts(["Paul Gauguin"]) == ["a Post-Impressionist painting by Paul Gauguin"]
    registry = instantiate(config["contributors"])
    assert registry.condition_kind == "caption" and len(registry.contributor_ids) == 3
    assert isinstance(instantiate(gen["extractors"])["aesthetic"], AestheticScorer)
    assert isinstance(instantiate(config["utilities"])["aesthetic"], ContributorAestheticScore)
    # the base-model bank for v(empty): the `base` section, the same pipeline without the LoRA
    base = instantiate(config["base"]["backend"], "config.base.backend")
    assert isinstance(base, StableDiffusion) and base.base_model and base.lora_path is None
    assert base.prompts(["Paul Gauguin"]) == backend.prompts(["Paul Gauguin"])
    # a missing LoRA file is named, with where it was configured
    gen["backend"]["init_args"].update(base_model=False, lora_path=str(tmp_path / "gone.safetensors"))
    with pytest.raises(FileNotFoundError, match=r"config.generation.backend.*gone.safetensors"):
        instantiate(gen["backend"], "config.generation.backend")


# --- Fashion-Product (FLUX + LoRA) --------------------------------------------------------------


def test_fashion_flux_resolves(tmp_path):
    import torchvision
    from PIL import Image
    from surrogateshap.metrics import (
        ContributorClusterEntropy,
        ContributorPairedLPIPS,
        HFImageEmbedding,
        PairedLPIPSScorer,
    )
    from test_paired_generation import StubCaptionBackend, tiny_clip_vision

    from surrogateshap.generation import ImageFolderSource, SamplingPlan, SubsetConditionedGenerator, collate_plan_rows
    from surrogateshap.generation.backends.flux import Flux

    model = save_tiny_flux(tmp_path / "flux")
    lora = save_random_lora(tiny_flux_pipeline(), tmp_path / "lora", target="transformer")
    alexnet = tmp_path / "alexnet.pth"
    features = torchvision.models.alexnet(weights=None).features.state_dict()
    torch.save({f"features.{k}": v for k, v in features.items()}, alexnet)
    vision = tiny_clip_vision(tmp_path / "embedder", processor=True)  # any transformers vision model folder
    centers = tmp_path / "centers.npy"
    np.save(centers, np.random.default_rng(0).normal(size=(20, vision.config.hidden_size)))
    images = tmp_path / "images"
    images.mkdir()
    for i, example_id in enumerate(["1", "2"]):  # one training image per example, named by its example_id
        Image.fromarray(np.full((40, 30, 3), 60 * i, dtype=np.uint8)).save(images / f"{example_id}.png")
    metadata = write_metadata(tmp_path / "meta.csv", [
        {"example_id": "1", "contributor": "Nike", "caption": "Nike Men Black Running Shoes"},
        {"example_id": "2", "contributor": "Puma", "caption": "Puma Women Grey T-shirt"},
    ])
    config = load_config(CONFIGS / "fashion_flux.yaml", {
        "paths.metadata": str(metadata), "paths.model_path": str(model), "paths.lora_path": str(lora),
        "paths.lpips_backbone_path": str(alexnet), "paths.cluster_centers": str(centers),
        "paths.images": str(images), "paths.embedding_model": str(tmp_path / "embedder"),
        "generation.backend.init_args.torch_dtype": None,
    })
    check_paths(config)
    gen = config["generation"]
    backend = instantiate(gen["backend"], "config.generation.backend")
    assert isinstance(backend, Flux) and backend.lora_path == lora and backend.resolution == 256
    assert gen["guidance_scale"] == 3.5 and gen["num_inference_steps"] == 50
    registry = instantiate(config["contributors"])
    assert registry.contributor_ids == ["Nike", "Puma"]
    extractors = instantiate(gen["extractors"], "config.generation.extractors")
    assert isinstance(extractors["embedding"], HFImageEmbedding) and extractors["embedding"].kind == "auto"
    paired = instantiate(gen["paired_scorers"], "config.generation.paired_scorers")
    assert isinstance(paired["paired_lpips"], PairedLPIPSScorer)
    source = instantiate(gen["source_images"], "config.generation.source_images")
    assert isinstance(source, ImageFolderSource) and source(["1", "2"]).shape == (2, 3, 256, 256)
    utilities = instantiate(config["utilities"])
    assert isinstance(utilities["diversity"], ContributorClusterEntropy) and utilities["diversity"].n_clusters == 20
    assert isinstance(utilities["paired_lpips"], ContributorPairedLPIPS)
    # the wired pieces score one sample per brand: an embedding for the clusters and a paired LPIPS per sample
    # (a stub caption backend stands in for FLUX, whose 256 px samples take half a minute on this CPU)
    module = SubsetConditionedGenerator(
        StubCaptionBackend(), extractors, gen["guidance_scale"], 1, paired_scorers=paired, source_images=source
    )
    plan = SamplingPlan(registry, 1, seed=config["seed"])
    out = module.predict_step(collate_plan_rows([plan[0], plan[1]]), 0)
    assert out["features"]["embedding"].shape == (2, vision.config.hidden_size)
    assert out["features"]["paired_lpips"].shape == (2,) and np.isfinite(out["features"]["paired_lpips"]).all()
    assert [plan[0]["example_id"], plan[1]["example_id"]] == ["1", "2"]
    gen["paired_scorers"]["paired_lpips"]["init_args"]["backbone_weights_path"] = str(tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError, match="lpips_backbone_path"):
        instantiate(gen["paired_scorers"], "config.generation.paired_scorers")
    gen["extractors"]["embedding"]["init_args"]["model_path"] = str(tmp_path / "no_embedder")
    with pytest.raises(FileNotFoundError, match="no_embedder"):
        instantiate(gen["extractors"], "config.generation.extractors")


@pytest.mark.parametrize("backend", ["stable_diffusion.StableDiffusion", "flux.Flux"])
def test_t2i_backend_arguments_are_checked_through_their_base_class(backend):
    """The backends forward **kwargs to DiffusersTextToImage: a misspelt one is still a ConfigError."""
    node = {"class_path": f"surrogateshap.generation.backends.{backend}",
            "init_args": {"model_path": "weights/sd", "lora_scal": 0.5}}
    with pytest.raises(ConfigError, match=r"takes no argument\(s\) \['lora_scal'\].*lora_scale"):
        instantiate(node, "config.generation.backend")


@pytest.mark.parametrize("name", ["digits", "digits_shared", "cifar20", "artbench_sd", "fashion_flux", "artists_sd"])
def test_shipped_attribution_configs_pass_the_checks_made_before_any_model_loads(name):
    """Every class a shipped config names imports and takes its init_args; v_empty is covered."""
    from surrogateshap.attribution import check_v_empty
    from surrogateshap.pipeline import attribute_sections

    sections = {**attribute_sections(), "data": None, "training": None}
    config = load_config(CONFIGS / f"{name}.yaml", sections=sections)
    for key in ("contributors", "generation", "utilities", "base", "roles"):
        check_buildable(config.get(key), f"config.{key}")
    check_v_empty(list(config["utilities"]), config.get("v_empty"), has_base="base" in config)


def test_check_buildable_names_the_node_and_builds_nothing(tmp_path):
    check_buildable({"class_path": "numpy.load", "init_args": {"file": str(tmp_path / "never_read.npy")}})
    with pytest.raises(ConfigError, match=r"config\.u\.m: class_path 'torch\.nn\.Linaer'.*did you mean 'Linear'"):
        check_buildable({"m": {"class_path": "torch.nn.Linaer"}}, "config.u")
    with pytest.raises(ConfigError, match=r"config\.x\.init_args\.inner: class_path 'torch\.nn\.Nope'"):
        check_buildable({"class_path": "torch.nn.Sequential", "init_args": {"inner": {"class_path": "torch.nn.Nope"}}},
                        "config.x")
    # a ContributorMetric forwards **kwargs to torchmetrics' Metric: only Metric's settings get through
    fid = {"class_path": "surrogateshap.metrics.ContributorMean", "init_args": {"feature": "s", "compute_on_cpu": True}}
    check_buildable(fid)
    fid["init_args"]["featur"] = "s"
    with pytest.raises(ConfigError, match=r"takes no argument\(s\) \['featur'\]"):
        check_buildable(fid)


def test_metric_settings_are_the_ones_torchmetrics_accepts():
    """METRIC_SETTINGS mirrors torchmetrics' Metric: each is accepted, anything else refused."""
    from surrogateshap.metrics import ContributorMean

    defaults = {"compute_on_cpu": False, "dist_sync_on_step": False, "process_group": None, "dist_sync_fn": None,
                "distributed_available_fn": None, "sync_on_compute": True, "compute_with_cache": True}
    assert set(defaults) == set(METRIC_SETTINGS)
    ContributorMean(feature="s", **defaults)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: `?featur"):
        ContributorMean(feature="s", featur="s")


def test_configs_that_expand_exponentially_are_refused_quickly(tmp_path):
    """YAML aliases of aliases and ${...} of ${...} are refused before they fill the memory."""
    aliases = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9))
    (tmp_path / "aliases.yaml").write_text(aliases)
    with pytest.raises(ConfigError, match=r"aliases\.yaml holds more than 100,000 values"):
        load_config(tmp_path / "aliases.yaml")
    refs = "s0: xxxxxxxxxx\n" + "".join(f's{i}: "${{s{i - 1}}}${{s{i - 1}}}"\n' for i in range(1, 40))
    (tmp_path / "refs.yaml").write_text(refs)
    with pytest.raises(ConfigError, match=r"refs\.yaml expands to more than 100,000 values"):
        load_config(tmp_path / "refs.yaml")
    # sharing that stays small is fine
    (tmp_path / "ok.yaml").write_text("a: &a [1, 2]\nb: *a\nc: ${a}\nd: '${b}-${c}'\n")
    assert load_config(tmp_path / "ok.yaml")["d"] == "[1, 2]-[1, 2]"
