"""The suite's data, from a case's phase to the report: outcomes, a case's result, the platform and run records, the
report, and the properties a phase's result travels in from a pytest-xdist worker to the controller.

Every producer (the plugin and its collector, `--stress`, `conformance bench`) and every consumer (the renderers, the
matrix, the diff, the soak) works on these types. JSON is how a report is stored: `Report.to_json()` gives the
document `report/schema.json` describes and `Report.from_json()` reads one back once `report.load` has validated it.
No other module spells an outcome name or a property key. This module imports nothing of the suite, so every part of
it can import this one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

# The version of the report document. A reader refuses any other, in one line (report/load.py).
SCHEMA_VERSION = 2

# ---- outcomes --------------------------------------------------------------------------------------------------

PASS = "pass"  # the platform does what the references say
FAIL = "fail"  # it does not, and nothing explains it
DEVIATION = "deviation"  # it does not, and the platform's expectation file documents why
UNEXPECTED_PASS = "unexpected-pass"  # a documented deviation did not happen
UNSUPPORTED = "unsupported"  # the mechanism does not exist here
ERROR = "error"  # the harness broke

OUTCOMES = (PASS, FAIL, DEVIATION, UNEXPECTED_PASS, UNSUPPORTED, ERROR)  # the order every page shows them in
SEVERITY = (ERROR, FAIL, UNEXPECTED_PASS, DEVIATION, UNSUPPORTED, PASS)  # worst first
FAILING = frozenset({FAIL, ERROR})  # what makes a run, a KTAP area or a regression check fail


# The area of `conformance bench`'s cases: their observations are measurements, which differ from run to run, so a
# change in one is never a regression.
MEASUREMENT_AREA = "perf"


def worst(outcomes: Iterable[str]) -> str:
    """The worst of some outcomes (a case's outcome is the worst of its phases'); pass when there are none."""
    present = set(outcomes)
    return next((outcome for outcome in SEVERITY if outcome in present), PASS)


def severity(outcome: str) -> int:
    """0 for the worst outcome; a larger number is a better one."""
    return SEVERITY.index(outcome)


# ---- a case's result ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expectation:
    """What the platform's expectation file says of a case: the outcome it expects, why, and where that is written."""

    outcome: str
    reason: str
    references: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"outcome": self.outcome, "reason": self.reason, "references": list(self.references)}

    @classmethod
    def from_json(cls, data: Mapping | None) -> Expectation | None:
        if data is None:
            return None
        return cls(data["outcome"], data["reason"], tuple(data["references"]))


def split_case_id(case_id: str) -> tuple[str, str, str]:
    """(area, name, params) of `area/name[params]`."""
    area, _, rest = case_id.partition("/")
    name, bracket, params = rest.partition("[")
    return area, name, params[:-1] if bracket else ""


def case_id_of(area: str, name: str, params: str) -> str:
    return f"{area}/{name}[{params}]" if params else f"{area}/{name}"


@dataclass
class CaseResult:
    """One case of a run: its outcome with the reason, the references it mirrors, what the platform showed."""

    id: str
    outcome: str
    reason: str = ""
    references: tuple[str, ...] = ()
    observations: dict[str, Any] = field(default_factory=dict)  # key -> JSON scalar, in the order recorded
    expectation: Expectation | None = None
    duration: Any = 0.0  # seconds, every phase; a number as the report holds it

    @property
    def area(self) -> str:
        return split_case_id(self.id)[0]

    @property
    def name(self) -> str:
        return split_case_id(self.id)[1]

    @property
    def params(self) -> str:
        return split_case_id(self.id)[2]

    @property
    def label(self) -> str:
        """The case as pytest names it within its area: name[params]."""
        return self.id.partition("/")[2]

    def all_references(self) -> list[str]:
        """The case's references, then the expectation's, without repeats."""
        references = list(self.references)
        if self.expectation:
            references += [ref for ref in self.expectation.references if ref not in references]
        return references

    def to_json(self) -> dict:
        return {
            "id": self.id, "area": self.area, "name": self.name, "params": self.params,
            "outcome": self.outcome, "reason": self.reason, "references": list(self.references),
            "observations": dict(self.observations),
            "expectation": self.expectation.to_json() if self.expectation else None,
            "duration": self.duration,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> CaseResult:
        return cls(data["id"], data["outcome"], data["reason"], tuple(data["references"]),
                   dict(data["observations"]), Expectation.from_json(data["expectation"]), data["duration"])


# ---- the platform, the suite and the run ----------------------------------------------------------------------


@dataclass(frozen=True)
class Capability:
    """A capability probe's answer: is the mechanism there, and why the probe thinks so."""

    supported: bool
    reason: str

    def to_json(self) -> dict:
        return {"supported": self.supported, "reason": self.reason}


@dataclass
class Platform:
    """The machine a report was made on; `capabilities` holds every probe's answer by probe name."""

    id: str
    os: str
    release: str
    kernel: str
    arch: str
    libc_name: str
    libc_version: str
    python_implementation: str
    python_version: str
    filesystem_path: str
    filesystem_type: str
    privileged: bool
    uid: Any  # an integer as the report holds it
    capabilities: dict[str, Capability] = field(default_factory=dict)

    @property
    def libc(self) -> str:
        return f"{self.libc_name} {self.libc_version}"

    @property
    def python(self) -> str:
        return f"{self.python_implementation} {self.python_version}"

    @property
    def family(self) -> tuple[str, str, str, str]:
        """What two platforms must share for their reports to be compared: OS, architecture, root or not, and the
        filesystem under test. The releases (kernel, libc, Python) are what a comparison is about."""
        return self.os, self.arch, "root" if self.privileged else "user", self.filesystem_type

    def to_json(self) -> dict:
        return {
            "id": self.id, "os": self.os, "release": self.release, "kernel": self.kernel, "arch": self.arch,
            "libc": {"name": self.libc_name, "version": self.libc_version},
            "python": {"implementation": self.python_implementation, "version": self.python_version},
            "filesystem": {"path": self.filesystem_path, "type": self.filesystem_type},
            "privileged": self.privileged, "uid": self.uid,
            "capabilities": {name: probe.to_json() for name, probe in self.capabilities.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping) -> Platform:
        return cls(
            data["id"], data["os"], data["release"], data["kernel"], data["arch"],
            data["libc"]["name"], data["libc"]["version"],
            data["python"]["implementation"], data["python"]["version"],
            data["filesystem"]["path"], data["filesystem"]["type"], data["privileged"], data["uid"],
            {name: Capability(probe["supported"], probe["reason"]) for name, probe in data["capabilities"].items()},
        )


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    commit: str | None = None

    @property
    def text(self) -> str:
        return f"{self.name} {self.version}" + (f" ({self.commit})" if self.commit else "")

    def to_json(self) -> dict:
        return {"name": self.name, "version": self.version, "commit": self.commit}

    @classmethod
    def from_json(cls, data: Mapping) -> Suite:
        return cls(data["name"], data["version"], data["commit"])


@dataclass
class Run:
    """How the run went: when it started, how long it took, with how many workers, its arguments and exit status."""

    started: str
    duration: Any  # seconds
    workers: Any  # pytest-xdist workers; 0 = one process
    argv: list[str]
    exit_status: Any
    deadline_scale: Any = 1.0  # CONFORMANCE_DEADLINE_SCALE: what every harness deadline was multiplied by
    case_timeout: Any = None  # seconds a case may take before pytest-timeout ends it; None: no such bound

    def to_json(self) -> dict:
        return {"started": self.started, "duration": self.duration, "workers": self.workers,
                "argv": list(self.argv), "exit_status": self.exit_status, "deadline_scale": self.deadline_scale,
                "case_timeout": self.case_timeout}

    @classmethod
    def from_json(cls, data: Mapping) -> Run:
        return cls(data["started"], data["duration"], data["workers"], list(data["argv"]), data["exit_status"],
                   data["deadline_scale"], data["case_timeout"])


@dataclass(frozen=True)
class UnmatchedDeviation:
    """An entry of the expectation file that no collected case matches: it documents nothing any more."""

    case: str  # the entry's case pattern
    reason: str
    source: str  # file:line

    def to_json(self) -> dict:
        return {"case": self.case, "reason": self.reason, "source": self.source}

    @classmethod
    def from_json(cls, data: Mapping) -> UnmatchedDeviation:
        return cls(data["case"], data["reason"], data["source"])


# How a run ended (Completeness.ended).
FINISHED = "finished"  # the session ran every case it selected
INTERRUPTED = "interrupted"  # a signal stopped it (Completeness.why names it)
STOPPED = "stopped"  # pytest stopped it early: -x, --maxfail, too many crashed workers (why says which)
ENDINGS = (FINISHED, INTERRUPTED, STOPPED)


# How a behaviour of an anchor suite fared in a run, from the outcomes of the cases that cover it (worst first).
BEHAVIOUR_STATES = ("failing", "deviating", "checked", "unsupported", "not run")


@dataclass
class AnchorCoverage:
    """One anchor suite (the kernel's selftests, FreeBSD's, LTP, ...) in a run: how many of the behaviours it checks
    this suite maps to cases, how many are out of scope, and the state of the mapped ones in this run."""

    anchor: str
    behaviours: int
    out_of_scope: int
    states: dict[str, int]  # BEHAVIOUR_STATES -> behaviours in that state (the mapped ones only)

    def to_json(self) -> dict:
        return {"anchor": self.anchor, "behaviours": self.behaviours, "out_of_scope": self.out_of_scope,
                "states": {state: self.states.get(state, 0) for state in BEHAVIOUR_STATES}}

    @classmethod
    def from_json(cls, data: Mapping) -> AnchorCoverage:
        return cls(data["anchor"], data["behaviours"], data["out_of_scope"], dict(data["states"]))


@dataclass
class Completeness:
    """Whether a report is the whole truth of its run: which cases the run selected, which ran to their end, and why
    the run ended. A report is complete when the session ran every case of the whole suite to its end."""

    ended: str = FINISHED
    why: str = ""  # the signal (SIGINT, SIGTERM) or why pytest stopped; "" when the run finished
    selection: list[str] = field(default_factory=list)  # what narrowed the run to part of the suite; [] = all of it
    collected: int = 0  # cases the run selected
    finished: int = 0  # of them, the cases that ran to their end (every phase reported)
    unfinished: list[str] = field(default_factory=list)  # case ids that started and never finished (each an error)

    @property
    def complete(self) -> bool:
        return (self.ended == FINISHED and not self.selection and not self.unfinished
                and self.finished == self.collected)

    def text(self) -> str:
        """One sentence for pages and the terminal: complete, or what is missing and why."""
        if self.complete:
            return f"complete: all {self.collected} cases of the suite ran to their end"
        parts = []
        if self.ended == INTERRUPTED:
            parts.append(f"interrupted by {self.why}")
        elif self.ended == STOPPED:
            parts.append(f"stopped early ({self.why})")
        if self.selection:
            parts.append("a selection of the suite (" + "; ".join(self.selection) + ")")
        parts.append(f"{self.finished} of the {self.collected} cases it selected ran to their end")
        if self.unfinished:
            parts.append(f"{len(self.unfinished)} started and did not finish")
        return "incomplete: " + ", ".join(parts)

    def to_json(self) -> dict:
        return {"complete": self.complete, "ended": self.ended, "why": self.why, "selection": list(self.selection),
                "collected": self.collected, "finished": self.finished, "unfinished": list(self.unfinished)}

    @classmethod
    def from_json(cls, data: Mapping) -> Completeness:
        return cls(data["ended"], data["why"], list(data["selection"]), data["collected"], data["finished"],
                   list(data["unfinished"]))


# ---- the report -----------------------------------------------------------------------------------------------


def summary_of(cases: Iterable[CaseResult]) -> dict[str, int]:
    """How many cases had each outcome, in display order."""
    counted = Counter(case.outcome for case in cases)
    return {outcome: counted[outcome] for outcome in OUTCOMES}


@dataclass
class Report:
    suite: Suite
    platform: Platform
    run: Run
    cases: list[CaseResult]  # sorted by id
    summary: dict[str, Any] = field(default_factory=dict)  # outcome -> count as recorded; summary_of() when built
    unmatched_deviations: list[UnmatchedDeviation] = field(default_factory=list)
    completeness: Completeness = field(default_factory=Completeness)
    anchors: list[AnchorCoverage] = field(default_factory=list)  # [] when the report does not say

    @classmethod
    def build(cls, suite: Suite, platform: Platform, run: Run, cases: Iterable[CaseResult],
              unmatched_deviations: Iterable[UnmatchedDeviation] = (),
              completeness: Completeness | None = None, anchors: Iterable[AnchorCoverage] = ()) -> Report:
        ordered = sorted(cases, key=lambda case: case.id)
        if completeness is None:
            completeness = Completeness(collected=len(ordered), finished=len(ordered))
        return cls(suite, platform, run, ordered, summary_of(ordered), list(unmatched_deviations), completeness,
                   list(anchors))

    @property
    def complete(self) -> bool:
        return self.completeness.complete

    def summary_mismatch(self) -> list[str]:
        """Outcomes whose recorded count differs from the cases listed (only a hand-edited report has any)."""
        counted = summary_of(self.cases)
        return [outcome for outcome in OUTCOMES if counted[outcome] != self.summary.get(outcome)]

    def observations(self) -> dict[str, Any]:
        """Every observation of every case, by key (keys are unique in a report)."""
        return {key: value for case in self.cases for key, value in case.observations.items()}

    def to_json(self) -> dict:
        document = {
            "schema_version": SCHEMA_VERSION,
            "suite": self.suite.to_json(),
            "platform": self.platform.to_json(),
            "run": self.run.to_json(),
            "summary": dict(self.summary),
            "cases": [case.to_json() for case in self.cases],
            "expectations": {"unmatched": [entry.to_json() for entry in self.unmatched_deviations]},
            "completeness": self.completeness.to_json(),
        }
        if self.anchors:  # optional: a report that does not say keeps to the fields it had
            document["anchors"] = [coverage.to_json() for coverage in self.anchors]
        return document

    @classmethod
    def from_json(cls, data: Mapping) -> Report:
        """The report of a document that `report.schema.validate` accepted."""
        return cls(Suite.from_json(data["suite"]), Platform.from_json(data["platform"]), Run.from_json(data["run"]),
                   [CaseResult.from_json(case) for case in data["cases"]], dict(data["summary"]),
                   [UnmatchedDeviation.from_json(entry) for entry in data["expectations"]["unmatched"]],
                   Completeness.from_json(data["completeness"]),
                   [AnchorCoverage.from_json(entry) for entry in data.get("anchors", [])])


# ---- a phase's result on its way from where the case ran to the collector ------------------------------------------

# pytest carries a test's user_properties from a pytest-xdist worker to the controller as (name, value) pairs of plain
# data. A case's phase report carries these; observations are added while the case runs and ride with every later
# phase, so the collector keeps the last value of each key.
PROPERTY_CASE = "conformance.case"  # the case id
PROPERTY_OUTCOME = "conformance.outcome"  # {"outcome", "reason", "expectation"}: this phase's
PROPERTY_REFERENCES = "conformance.references"  # [str]: on the setup phase
PROPERTY_OBSERVATION = "conformance.observation"  # (key, value): one per observation
# What a process collected, on the first test report it sends: {"cases": {node id: case id}, "deselected": int,
# "selection": [str]}. Under pytest-xdist only the workers collect, so this is how the controller learns it.
PROPERTY_COLLECTION = "conformance.collection"
# The JUnit XML (plugin/junit.py) gives each case's final result as properties too: PROPERTY_CASE, PROPERTY_OUTCOME
# (the outcome alone), these two, and PROPERTY_OBSERVATION + "." + key for each observation.
PROPERTY_REASON = "conformance.reason"
PROPERTY_REFERENCE = "conformance.reference"  # one per reference


@dataclass
class Phase:
    """What one phase (setup, call or teardown) of a case said."""

    case_id: str
    outcome: str
    reason: str = ""
    expectation: Expectation | None = None
    references: tuple[str, ...] | None = None  # only the setup phase carries them
    observations: dict[str, Any] = field(default_factory=dict)

    def properties(self) -> list[tuple[str, Any]]:
        """The properties this phase adds to its test report (observations travel on their own)."""
        outcome = {"outcome": self.outcome, "reason": self.reason,
                   "expectation": self.expectation.to_json() if self.expectation else None}
        props: list[tuple[str, Any]] = [(PROPERTY_CASE, self.case_id), (PROPERTY_OUTCOME, outcome)]
        if self.references is not None:
            props.append((PROPERTY_REFERENCES, list(self.references)))
        return props


def observation_property(key: str, value: Any) -> tuple[str, Any]:
    return PROPERTY_OBSERVATION, (key, value)


@dataclass
class Collection:
    """What a process collected for the run: each selected case by pytest node id, how many tests were deselected,
    and what narrowed the run to part of the suite."""

    cases: dict[str, str] = field(default_factory=dict)  # node id -> case id
    deselected: int = 0
    selection: list[str] = field(default_factory=list)

    def property(self) -> tuple[str, Any]:
        return PROPERTY_COLLECTION, {"cases": dict(self.cases), "deselected": self.deselected,
                                     "selection": list(self.selection)}


def read_collection(properties: Iterable[tuple[str, Any]]) -> Collection | None:
    for name, value in properties:
        if name == PROPERTY_COLLECTION:
            return Collection(dict(value["cases"]), value["deselected"], list(value["selection"]))
    return None


def read_phase(properties: Iterable[tuple[str, Any]]) -> Phase | None:
    """The phase a test report's user_properties carry; None for a test that is not a conformance case."""
    case_id, outcome, references, observations = None, None, None, {}
    for name, value in properties:
        if name == PROPERTY_CASE:
            case_id = value
        elif name == PROPERTY_OUTCOME:
            outcome = value
        elif name == PROPERTY_REFERENCES:
            references = tuple(value)
        elif name == PROPERTY_OBSERVATION:
            key, observed = value
            observations[key] = observed
    if case_id is None or outcome is None:
        return None
    return Phase(case_id, outcome["outcome"], outcome["reason"], Expectation.from_json(outcome["expectation"]),
                 references, observations)
