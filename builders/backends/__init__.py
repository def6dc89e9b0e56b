"""Generation backends for the candidate pool (one small module each, one registry line each)."""

from .base import BACKENDS, Backend, GenRequest, GenResult, load_backend

__all__ = ["BACKENDS", "Backend", "GenRequest", "GenResult", "load_backend"]
