"""nodus: a command-line toolkit for operations engineers."""

__version__ = "0.1.0"
