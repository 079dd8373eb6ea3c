"""The run's own directory on the filesystem under test. Every process of the run (the only one, or each
pytest-xdist worker) makes its session directories inside it, so that whatever a killed worker could not remove, the
controller removes with it at the end."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

RUN_DIR = pytest.StashKey[str]()
WORKER_INPUT = "conformance_run_dir"


def make(config: pytest.Config, target: str) -> str:
    """The controller's (or the only process's) new run directory; a worker's is the one its controller made."""
    if WORKER_INPUT in getattr(config, "workerinput", {}):
        path = config.workerinput[WORKER_INPUT]
    else:
        path = tempfile.mkdtemp(prefix="conformance-", dir=target)
        # Traversable by any uid (not listable): a case's child that dropped privileges must reach the socket or file
        # its case made for it; each of those sets its own permissions.
        os.chmod(path, 0o711)
    config.stash[RUN_DIR] = path
    return path


def of(config: pytest.Config) -> str:
    return config.stash[RUN_DIR]


def remove(config: pytest.Config) -> None:
    """Remove the run's directory, where this process made it (and made it at all)."""
    if RUN_DIR in config.stash and WORKER_INPUT not in getattr(config, "workerinput", {}):
        shutil.rmtree(config.stash[RUN_DIR], ignore_errors=True)


class WorkerInput:
    """On a pytest-xdist controller: hands every worker the run directory."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:
        node.workerinput[WORKER_INPUT] = of(self.config)
