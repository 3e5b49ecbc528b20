"""Zicha (自查): a chat assistant for the annual self-check of inspection and testing institutions."""

__version__ = "0.1.0"
