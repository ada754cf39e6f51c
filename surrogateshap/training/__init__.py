"""Training the embedded setting's models with Lightning: the class-conditional DDPM and the digits feature network."""

from .._lazy import lazy_exports

__all__ = ["DiffusionTraining", "DigitsDataModule", "DigitsExtractor", "DigitsFeatureNet", "FeatureNetTraining",
           "SavePretrained", "build_unet"]

__getattr__, __dir__ = lazy_exports(__name__, globals(), {
    "DiffusionTraining": ".diffusion", "build_unet": ".diffusion",
    "DigitsDataModule": ".data",
    "DigitsExtractor": ".features", "DigitsFeatureNet": ".features", "FeatureNetTraining": ".features",
    "SavePretrained": ".export",
})
