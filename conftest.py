# Lets `pytest` run from a plain checkout; when the package is installed its entry point of the
# same name has already registered the plugin and this line is a no-op.
pytest_plugins = ["conformance.plugin"]
