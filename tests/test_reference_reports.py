"""The committed reference reports in reports/, reports/kernels/, reports/compat/ and reports/arch/: each is whole and
valid, a root and an unprivileged reference of one machine differ only where privilege should matter, the kernels',
the 32-bit userland's and the other architectures' matrix and summary are those of the committed reports, and the
32-bit userland differs from the native run only where the data model explains it."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.kernels.sources import release_key
from conformance.model import FAILING
from conformance.report.diff import diff_reports
from conformance.report.formats import REPORT_FORMATS
from conformance.report.load import read_report
from conformance.report.matrix import build_matrix
from conformance.report.matrix_markdown import render_matrix_markdown

REPORTS = Path(__file__).resolve().parents[1] / "reports"
KERNELS = REPORTS / "kernels"
COMPAT = REPORTS / "compat"
ARCH = REPORTS / "arch"
REFERENCES = sorted(REPORTS.glob("*.json")) + [p for directory in (KERNELS, COMPAT, ARCH)
                                               for p in sorted(directory.glob("*.json")) if p.name != "matrix.json"]
MARKDOWN = next(form for form in REPORT_FORMATS if form.suffix == ".md").render  # the page as written


def test_there_are_reference_reports():
    assert REFERENCES, f"no reference report in {REPORTS}"


@pytest.mark.parametrize("path", REFERENCES, ids=[p.stem for p in REFERENCES])
def test_a_reference_is_named_for_its_platform_and_its_page_is_current(path):
    report = read_report(path)
    assert path.stem == report.platform.id
    assert report.suite.commit, "a reference must say which commit of the suite made it"
    failing = [case for case in report.cases if case.outcome in FAILING]
    # A platform defect is recorded, with its evidence, so that a fresh run is judged against it (README: "Run the
    # project's tests"); the run's status is then that of a run with failing cases, and nothing else.
    assert report.run.exit_status == (1 if failing else 0)
    assert all(case.reason.strip() for case in failing), "a recorded failure must carry its evidence"
    assert report.complete, f"a reference is the whole suite run to its end: {report.completeness.text()}"
    assert report.unmatched_deviations == [], "the expectation file documents cases the suite no longer has"
    page = path.with_suffix(".md")
    assert page.read_text(encoding="utf-8") == MARKDOWN(report), f"{page} is stale: conformance render"


PAIRS = [(root, root.with_name(root.name.replace("-root-", "-user-"))) for root in REFERENCES if "-root-" in root.name]
PAIRS = [(root, user) for root, user in PAIRS if user.exists()]


@pytest.mark.parametrize(("root", "user"), PAIRS, ids=[r.stem for r, _ in PAIRS])
def test_root_and_unprivileged_differ_only_where_privilege_matters(root, user):
    diff = diff_reports(read_report(root), read_report(user))
    assert diff.exit_status == 0
    assert diff.cases, "no case needs root?"
    for change in diff.cases:
        assert (change.kind, change.old, change.new) == ("changed", "pass", "unsupported"), change
        assert "root" in change.reason, change
    assert {change.kind for change in diff.observations} <= {"vanished"}


KERNEL_REPORTS = [p for p in REFERENCES if p.parent == KERNELS]


def test_the_kernel_references_are_three_kernels_on_one_filesystem():
    reports = [read_report(p) for p in KERNEL_REPORTS]
    releases = sorted((r.platform.release for r in reports), key=release_key)
    assert [r.split(".")[:2] for r in releases] == [["6", "1"], ["6", "12"], ["6", "18"]], releases
    assert {r.platform.filesystem_type for r in reports} == {"tmpfs"}
    assert len({r.suite.commit for r in reports}) == 1, "the kernel references come from one commit"


def test_the_kernel_matrix_and_summary_are_those_of_the_committed_reports():
    matrix = build_matrix([(p.name, read_report(p)) for p in KERNEL_REPORTS])
    assert (KERNELS / "matrix.md").read_text(encoding="utf-8") == render_matrix_markdown(matrix)
    summary = (KERNELS / "kernels.md").read_text(encoding="utf-8")
    for path in KERNEL_REPORTS:
        assert path.name.replace("_", "\\_") in summary, f"{path.name} is not in kernels.md"


COMPAT_REPORTS = [p for p in REFERENCES if p.parent == COMPAT]


def _compat(arch: str, who: str):
    reports = [read_report(p) for p in COMPAT_REPORTS]
    found = [r for r in reports if r.platform.arch == arch and r.platform.privileged == (who == "root")]
    assert len(found) == 1, f"reports/compat holds {len(found)} {arch} {who} reports"
    return found[0]


def test_the_compat_references_are_the_32_bit_userland_and_the_native_run_of_one_commit():
    i386 = _compat("i686 on x86_64", "root")
    assert i386.platform.arch == "i686 on x86_64" and i386.platform.filesystem_type == "tmpfs"
    duplication = [case for case in i386.cases if case.id.startswith("duplication/")]
    assert len(duplication) >= 32 and {case.outcome for case in duplication} == {"pass"}
    assert len({read_report(p).suite.commit for p in COMPAT_REPORTS}) == 1, "one commit made them all"


def test_the_32_bit_userland_differs_from_the_native_run_only_where_the_data_model_explains_it():
    diff = diff_reports(_compat("x86_64", "root"), _compat("i686 on x86_64", "root"), observations_regress=True)
    assert diff.exit_status == 0, diff.regressions()
    assert not diff.cases, [(c.id, c.old, c.new) for c in diff.cases]
    kinds = {change.kind for change in diff.observations}
    assert kinds <= {"abi", "measurement"}, [c.key for c in diff.observations if c.kind not in ("abi", "measurement")]
    assert "abi" in kinds


def test_the_compat_matrix_and_summary_are_those_of_the_committed_reports():
    matrix = build_matrix([(p.name, read_report(p)) for p in COMPAT_REPORTS])
    assert (COMPAT / "matrix.md").read_text(encoding="utf-8") == render_matrix_markdown(matrix)
    summary = (COMPAT / "compat.md").read_text(encoding="utf-8")
    for path in COMPAT_REPORTS:
        assert path.name.replace("_", "\\_") in summary, f"{path.name} is not in compat.md"


ARCH_REPORTS = [p for p in REFERENCES if p.parent == ARCH]


def test_the_architecture_references_are_debian_kernels_of_other_machines_on_tmpfs():
    reports = {read_report(p).platform.arch: read_report(p) for p in ARCH_REPORTS}
    assert set(reports) >= {"aarch64", "s390x"}, sorted(reports)
    for report in reports.values():
        assert report.platform.filesystem_type == "tmpfs" and report.platform.privileged
        assert report.platform.release.startswith("6.1.0-"), report.platform.release


def test_the_architecture_matrix_is_theirs_beside_the_kernel_references_and_the_summary_names_them():
    """One matrix of every architecture reached: the kernels' references (x86_64) and the other machines'."""
    matrix = build_matrix([(str(p.relative_to(REPORTS.parent)), read_report(p)) for p in KERNEL_REPORTS + ARCH_REPORTS])
    assert (ARCH / "matrix.md").read_text(encoding="utf-8") == render_matrix_markdown(matrix)
    summary = (ARCH / "arch.md").read_text(encoding="utf-8")
    for path in ARCH_REPORTS:
        assert path.name.replace("_", "\\_") in summary, f"{path.name} is not in arch.md"
