"""Kaskad: a headless, plugin-based marketing-automation server for CRM marketing."""

from kaskad.hookspecs import hookimpl

__all__ = ["hookimpl"]
__version__ = "0.1.0"
