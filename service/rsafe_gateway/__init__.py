"""RSafe moderation gateway: policy-guided reasoning guard behind one HTTP API."""

__version__ = "0.1.0"

__all__ = ["__version__"]
