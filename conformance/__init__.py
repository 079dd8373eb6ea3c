"""Conformance suite for descriptor passing and file locking on Unix systems."""

__version__ = "0.1.0"
