"""Reading, checking, rendering, comparing and writing reports; the report itself is conformance.model.Report."""
