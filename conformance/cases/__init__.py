"""The conformance cases, one module per area (test_<area>.py)."""
