"""Datasets of the embedded settings (scikit-learn's digits with planted contributors)."""

from .digits import DigitsContributors, DigitsPlanting, add_marker, corrupt, load_digits_images

__all__ = ["DigitsContributors", "DigitsPlanting", "add_marker", "corrupt", "load_digits_images"]
