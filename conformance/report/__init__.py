"""Report model, schema, writers and renderers."""
