"""Task manager REST API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("task-manager")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
