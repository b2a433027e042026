"""simpler-build: build, cache and run the simpler NPU task runtime's binaries."""

__version__ = "0.1.0"
