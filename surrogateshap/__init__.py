"""SurrogateSHAP: training-free contributor attribution for conditional image generators."""

__version__ = "0.1.0"
