"""The pytest plugin of `conformance bench`: its options and the `bench` fixture the perf cases read them from.

Loaded with `-p conformance.bench.plugin` by the command (or by hand:
`pytest -p conformance.bench.plugin conformance/bench/cases.py`); never by a plain pytest run.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from . import QUICK_DIVISOR

ROUNDS = 3  # each figure is the best of this many timed runs


@dataclass(frozen=True)
class Settings:
    quick: bool = False
    suite_args: tuple = ()

    @property
    def rounds(self) -> int:
        return 1 if self.quick else ROUNDS

    def iterations(self, full: int) -> int:
        return max(1, full // QUICK_DIVISOR) if self.quick else full


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance bench")
    group.addoption("--bench-quick", action="store_true", default=False,
                    help=f"{QUICK_DIVISOR} times fewer iterations and one timed run per figure (a smoke test)")
    group.addoption("--bench-suite-arg", action="append", default=[], metavar="ARG",
                    help="an argument for pytest in the timed suite runs (repeat it; write --bench-suite-arg=-k)")


@pytest.fixture(scope="session")
def bench(pytestconfig: pytest.Config) -> Settings:
    return Settings(quick=pytestconfig.getoption("bench_quick"),
                    suite_args=tuple(pytestconfig.getoption("bench_suite_arg")))
