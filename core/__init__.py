"""simpler-build: build, cache and run the simpler NPU task runtime's binaries."""

from simpler_build.errors import DeviceError, SimplerError

#: The one place the version is written; pyproject.toml reads it from here.
__version__ = "0.2.0"

__all__ = ["DeviceError", "SimplerError", "__version__"]
