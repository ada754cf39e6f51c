"""The YAML configs shipped with the package (``importlib.resources.files("surrogateshap.configs")``)."""
