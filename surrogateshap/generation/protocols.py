"""The small interfaces between a user's Lightning objects and ours (``typing.Protocol``: nothing to inherit).

- :class:`BackendProvider`: what a LightningModule implements so that
  :class:`~surrogateshap.callbacks.ContributorValueMonitor` can sample it while it trains.
- :class:`DescribesGeneration`: what a predict module implements so that
  :class:`~surrogateshap.callbacks.BankWriter` records (and checks on resume) how the bank was generated.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from .backends.base import GenerationBackend

__all__ = ["BackendProvider", "DescribesGeneration"]


@runtime_checkable
class BackendProvider(Protocol):
    """A model that can hand out a generation backend over its current weights.

    ``to_backend()`` is called every time the monitor attributes (every k epochs), in eval mode
    and under ``torch.no_grad()``; it should wrap the module's own networks (not copies, unless
    copying is the point, e.g. an exponential moving average) in a
    :class:`~surrogateshap.generation.GenerationBackend`, for instance
    ``StableDiffusion.from_pipeline(StableDiffusionPipeline(unet=self.unet, ...))`` or a
    :class:`~surrogateshap.generation.ClassConditionalDDPM`.

    >>> class MyModule:
    ...     def to_backend(self):
    ...         ...
    >>> isinstance(MyModule(), BackendProvider)
    True
    """

    def to_backend(self) -> GenerationBackend:
        """A backend that samples the model as it is now."""
        ...


@runtime_checkable
class DescribesGeneration(Protocol):
    """A module that says how it generates: backend class, guidance, steps, each feature's extractor.

    >>> from surrogateshap.generation import SubsetConditionedGenerator
    >>> issubclass(SubsetConditionedGenerator, DescribesGeneration)
    True
    """

    def generation_config(self) -> dict[str, Any]:
        """The generation settings, JSON-serialisable (stored in the bank's config)."""
        ...
