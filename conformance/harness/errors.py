"""The harness's own failure, kept free of pytest so that a freshly exec'd helper starts fast (on an emulated kernel
importing pytest costs seconds)."""


class HarnessError(Exception):
    """The harness could not carry out the case; its outcome is `error`, never pass or fail."""
