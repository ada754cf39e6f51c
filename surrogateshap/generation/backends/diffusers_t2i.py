"""Shared plumbing of the text-to-image backends: local loading, LoRA, batch-independent calls.

A :class:`DiffusersTextToImage` wraps a diffusers pipeline loaded from a local folder. The
pipeline's model components (UNet or transformer, VAE, text encoders) are registered as
``nn.Module`` children, so the Lightning Trainer moves and casts them; the pipeline object
itself reads its device and dtype from those same modules. Nothing is downloaded: paths are
checked before diffusers sees them, and every load passes ``local_files_only=True``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from .base import Condition, GenerationBackend

#: the file name diffusers' ``save_lora_weights`` writes by default
LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
#: the adapter name under which a LoRA file is loaded into the pipeline
ADAPTER_NAME = "contributors"


def check_model_folder(path: str | os.PathLike, what: str, key: str = "model_path") -> Path:
    """The local pipeline folder ``path``, or a FileNotFoundError saying what to put there."""
    folder = Path(path).expanduser()
    if not (folder / "model_index.json").is_file():
        problem = "does not exist" if not folder.exists() else "has no model_index.json"
        raise FileNotFoundError(
            f"{what} pipeline folder '{folder}' {problem} (config key `{key}`). This machine downloads nothing: "
            f"on a connected machine run `{what}Pipeline.from_pretrained(<hub id>).save_pretrained(<folder>)` "
            f"(or copy the model's snapshot folder from the Hugging Face cache), copy that folder, with its "
            f"model_index.json and component subfolders, to '{folder}', or set `{key}` to where it is."
        )
    return folder


def resolve_lora_file(path: str | os.PathLike, key: str = "lora_path") -> tuple[Path, str]:
    """``(folder, weight_name)`` of a LoRA weights file or folder, or a FileNotFoundError naming it."""
    target = Path(path).expanduser()
    if target.is_file():
        return target.parent, target.name
    if target.is_dir():
        if (target / LORA_WEIGHT_NAME).is_file():
            return target, LORA_WEIGHT_NAME
        candidates = sorted(p.name for p in target.glob("*.safetensors"))
        if len(candidates) == 1:
            return target, candidates[0]
        found = f"it holds {len(candidates)} .safetensors files ({', '.join(candidates)}); name one" if candidates \
            else f"it holds no {LORA_WEIGHT_NAME}"
        raise FileNotFoundError(
            f"LoRA weights not found in folder '{target}' (config key `{key}`): {found}. Point `{key}` at the "
            f"weights file written by the fine-tuning run (`save_lora_weights`, default name {LORA_WEIGHT_NAME})."
        )
    raise FileNotFoundError(
        f"LoRA weights file '{target}' does not exist (config key `{key}`). Copy the LoRA weights saved by the "
        f"fine-tuning run (`pipe.save_lora_weights(folder)` writes {LORA_WEIGHT_NAME}) to that path, set `{key}` "
        f"to where they are, or leave `{key}` empty for the base model."
    )


class DiffusersTextToImage(GenerationBackend):
    """A caption-conditioned backend around a diffusers pipeline (+ optional LoRA): loaded from a local
    folder (``model_path``), or one already in memory (``pipeline``, :meth:`from_pipeline`), such as a
    pipeline over the UNet a user is fine-tuning.

    Subclasses set ``pipeline_class`` (a diffusers pipeline class) and implement
    :meth:`_pipeline_kwargs` with the call options specific to their pipeline. The constructor
    arguments are documented on :class:`~surrogateshap.generation.backends.stable_diffusion.StableDiffusion`.
    """

    condition_kind = "caption"
    pipeline_class: ClassVar[Any] = None
    #: extra keyword arguments for ``pipeline_class.from_pretrained``
    load_kwargs: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        lora_path: str | os.PathLike | None = None,
        resolution: int | None = None,
        lora_scale: float = 1.0,
        base_model: bool = False,
        prompt_template: str = "{}",
        torch_dtype: torch.dtype | str | None = None,
        batch_invariant: bool = True,
        pipeline: Any = None,
    ) -> None:
        super().__init__()
        what = self.pipeline_class.__name__.removesuffix("Pipeline")
        if (model_path is None) == (pipeline is None):
            raise ValueError(
                f"give {what} either model_path (a local pipeline folder) or pipeline (a "
                f"{self.pipeline_class.__name__} in memory, see from_pipeline), not both or neither."
            )
        if pipeline is not None and not isinstance(pipeline, self.pipeline_class):
            raise ValueError(f"pipeline must be a {self.pipeline_class.__name__}, got {type(pipeline).__name__}.")
        if pipeline is not None and torch_dtype is not None:
            raise ValueError(
                "torch_dtype converts weights as they are loaded; an in-memory pipeline is used as it is (converting "
                "it would convert the caller's own modules): give pipeline.to(dtype) yourself, or no torch_dtype."
            )
        folder = None if model_path is None else check_model_folder(model_path, what)
        lora = None if (base_model or lora_path in (None, "")) else resolve_lora_file(lora_path)
        if "{}" not in prompt_template:
            raise ValueError(f"prompt_template must contain '{{}}' where the caption goes, got {prompt_template!r}.")
        if isinstance(torch_dtype, str):
            if not isinstance(getattr(torch, torch_dtype, None), torch.dtype):
                raise ValueError(f"torch_dtype must name a torch dtype such as 'bfloat16', got {torch_dtype!r}.")
            torch_dtype = getattr(torch, torch_dtype)
        if pipeline is None:
            kwargs = dict(self.load_kwargs, local_files_only=True)
            if torch_dtype is not None:
                kwargs["torch_dtype"] = torch_dtype
            pipe = self.pipeline_class.from_pretrained(str(folder), **kwargs)
        else:
            pipe = pipeline
        if lora is not None:
            lora_folder, weight_name = lora
            pipe.load_lora_weights(
                str(lora_folder), weight_name=weight_name, adapter_name=ADAPTER_NAME, local_files_only=True
            )
            if lora_scale != 1.0:
                pipe.set_adapters([ADAPTER_NAME], adapter_weights=[float(lora_scale)])
        self.model_path = folder
        self.base_model = lora is None
        self.lora_path = None if lora is None else lora[0] / lora[1]
        self.resolution = None if resolution is None else int(resolution)
        self.prompt_template = prompt_template
        self.batch_invariant = bool(batch_invariant)
        self._attach(pipe, freeze=pipeline is None)

    @classmethod
    def from_pretrained(
        cls, model_path: str | os.PathLike, lora_path: str | os.PathLike | None = None, **kwargs: Any
    ) -> DiffusersTextToImage:
        """Load the pipeline saved in the local folder ``model_path`` (plus LoRA weights at ``lora_path``)."""
        return cls(model_path, lora_path=lora_path, **kwargs)

    @classmethod
    def from_pipeline(cls, pipeline: Any, **kwargs: Any) -> DiffusersTextToImage:
        """A backend over a pipeline already in memory (e.g. built around the UNet being trained).

        Its modules are used as they are, neither copied nor frozen: generation runs under
        ``torch.no_grad()``, so training them goes on unaffected. ``kwargs`` as for the constructor
        (``lora_path`` loads a LoRA into this very pipeline).
        """
        return cls(pipeline=pipeline, **kwargs)

    @classmethod
    def base(cls, model_path: str | os.PathLike, **kwargs: Any) -> DiffusersTextToImage:
        """The base model without LoRA (its bank gives ``v_empty``)."""
        kwargs.pop("lora_path", None)
        return cls(model_path, base_model=True, **kwargs)

    def _attach(self, pipe: Any, freeze: bool) -> None:
        """Keep the pipeline and register its model components as children (loaded ones frozen, in eval mode)."""
        pipe.set_progress_bar_config(disable=True)
        for name, component in pipe.components.items():
            if isinstance(component, nn.Module):
                if freeze:
                    component.requires_grad_(False)
                    component.eval()
                self.add_module(name, component)
        object.__setattr__(self, "pipeline", pipe)  # not a Module: kept out of children and state_dict

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the model weights (follows the Trainer's precision)."""
        for param in self.parameters():
            if param.dtype.is_floating_point:
                return param.dtype
        return torch.float32

    def prompts(self, conditions: Sequence[Condition]) -> list[str]:
        """The prompt for each caption condition (``prompt_template`` filled with the caption)."""
        out = []
        for condition in conditions:
            if not isinstance(condition, str):
                raise TypeError(
                    f"{type(self).__name__} is conditioned on captions (strings); got {type(condition).__name__} "
                    f"{condition!r}: the plan must come from a caption registry."
                )
            out.append(self.prompt_template.format(condition))
        return out

    def _pipeline_kwargs(self, guidance_scale: float) -> dict[str, Any]:
        """Call options specific to the pipeline (guidance, sizes)."""
        raise NotImplementedError

    @torch.no_grad()
    def generate(
        self,
        conditions: Sequence[Condition],
        generators: Sequence[torch.Generator],
        guidance_scale: float,
        num_inference_steps: int,
    ) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` float32 in [0, 1], one CPU generator per prompt.

        With ``batch_invariant`` the pipeline runs once per sample, so an image is bit-identical
        whatever batch it falls in (batched kernels round differently in the last bits, ~1e-6);
        otherwise one batched pipeline call (faster on GPUs), equal up to that rounding.
        """
        if len(conditions) != len(generators):
            raise ValueError(f"got {len(conditions)} conditions but {len(generators)} generators.")
        if len(conditions) == 0:
            raise ValueError("generate needs at least one condition.")
        prompts = self.prompts(conditions)
        if self.batch_invariant and len(prompts) > 1:
            return torch.cat([
                self._call(prompts[b : b + 1], generators[b : b + 1], guidance_scale, num_inference_steps)
                for b in range(len(prompts))
            ])
        return self._call(prompts, generators, guidance_scale, num_inference_steps)

    def _call(
        self, prompts: list[str], generators: Sequence[torch.Generator], guidance_scale: float, steps: int
    ) -> torch.Tensor:
        """One pipeline call for ``prompts``: float32 images in [0, 1]."""
        kwargs = self._pipeline_kwargs(float(guidance_scale))
        if self.resolution is not None:
            kwargs.update(height=self.resolution, width=self.resolution)
        out = self.pipeline(
            prompt=prompts,
            generator=list(generators),
            num_inference_steps=int(steps),
            num_images_per_prompt=1,
            output_type="pt",
            return_dict=True,
            **kwargs,
        )
        return out.images.float().clamp(0, 1)
