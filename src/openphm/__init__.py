"""OpenPHM: open-source population health management for English Integrated Care Systems."""

__version__ = "0.1.0"
