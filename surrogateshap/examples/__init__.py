"""Embedded settings, each a package beside the library: its planted data, its models and their training,
its retraining game and its shipped assets.

- :mod:`surrogateshap.examples.digits`: scikit-learn's digits split into 20 contributors with planted
  corrupted and marked ones, a class-conditional DDPM and a digits feature network (the default,
  ``surrogateshap demo``).
"""
