"""Rendering behaviour that needs more than one render or the repository's files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .conftest import REPO_ROOT, Render, RenderError, find, one

DASHBOARDS = sorted((REPO_ROOT / "grafana-dashboards").glob("*.json"))


def _checksum(render: Render, **set_values: str) -> str:
    deployment = one(render(set_values=set_values), "Deployment", "tm-task-manager")
    return deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


def test_a_config_change_rolls_the_pods_and_a_rerender_does_not(render: Render) -> None:
    base = _checksum(render)
    assert _checksum(render) == base
    assert _checksum(render, **{"config.logLevel": "WARNING"}) != base
    assert _checksum(render, **{"auth.existingSecret": "other"}) != base


def test_dashboards_become_one_configmap_each_for_the_grafana_sidecar(render: Render) -> None:
    configmaps = [
        m
        for m in find(render("values-prod.yaml"), "ConfigMap")
        if m["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    assert len(configmaps) == len(DASHBOARDS)
    for cm, path in zip(sorted(configmaps, key=lambda m: next(iter(m["data"]))), DASHBOARDS):
        assert list(cm["data"]) == [path.name]
        rendered, source = json.loads(cm["data"][path.name]), json.loads(path.read_text())
        assert rendered["uid"].startswith(source["uid"] + "-")
        assert rendered | {"uid": source["uid"]} == source
        assert cm["metadata"]["annotations"]["grafana_folder"] == "Task Manager"


def test_dashboard_label_and_folder_are_configurable(render: Render) -> None:
    assert DASHBOARDS, "grafana-dashboards/ has no dashboard"
    manifests = render(
        set_values={
            "dashboards.enabled": "true",
            "dashboards.labelKey": "dash",
            "dashboards.labelValue": "yes",
            "dashboards.folder": "Tasks",
        }
    )
    cm = next(m for m in find(manifests, "ConfigMap") if "dash" in m["metadata"]["labels"])
    assert cm["metadata"]["labels"]["dash"] == "yes"
    assert cm["metadata"]["annotations"]["grafana_folder"] == "Tasks"


def test_a_typo_in_values_fails_the_render(render: Render) -> None:
    with pytest.raises(RenderError, match="loglevel"):
        render(set_values={"config.loglevel": "INFO"})


def test_dev_runs_collector_and_jaeger_and_prod_points_at_a_backend(render: Render) -> None:
    dev = render("values-dev.yaml")
    assert {m["metadata"]["name"] for m in find(dev, "Service")} == {
        "tm-task-manager",
        "tm-otel-collector",
        "tm-jaeger",
    }
    prod = render("values-prod.yaml")
    assert not find(prod, "Service", "tm-jaeger")
    config = one(prod, "ConfigMap", "tm-otel-collector")["data"]["config.yaml"]
    assert "endpoint: tempo-distributor.tracing.svc:4317" in config


def _package(tmp_path: Path) -> Path:
    """The chart as the release packages it (ci/package-chart.sh)."""
    import os
    import subprocess

    from .conftest import _helm

    env = {**os.environ, "PATH": f"{Path(_helm()).parent}:{os.environ['PATH']}"}
    subprocess.run(
        [str(REPO_ROOT / "ci" / "package-chart.sh"), str(tmp_path)],
        check=True,
        capture_output=True,
        env=env,
        timeout=120,
    )
    (package,) = tmp_path.glob("task-manager-*.tgz")
    return package


def test_the_package_leaves_out_everything_but_the_chart(tmp_path: Path) -> None:
    import tarfile

    with tarfile.open(_package(tmp_path)) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    top = {n.split("/", 1)[0] for n in names}
    assert top <= {
        "Chart.yaml",
        "Chart.lock",
        "values.yaml",
        "values.schema.json",
        "values-dev.yaml",
        "values-prod.yaml",
        "README.md",
        "CHANGELOG.md",
        ".helmignore",
        "templates",
        "charts",
        "grafana-dashboards",
    }, top
    assert {"Chart.yaml", "values.yaml", "templates", "charts", "README.md", "CHANGELOG.md"} <= top
    assert all(f"grafana-dashboards/{p.name}" in names for p in DASHBOARDS)


def test_the_packaged_readme_is_for_chart_users_with_working_links(tmp_path: Path) -> None:
    import re
    import tarfile

    with tarfile.open(_package(tmp_path)) as tar:
        member = tar.extractfile("task-manager/README.md")
        assert member is not None
        readme = member.read().decode()
    headings = re.findall(r"^## (.+)$", readme, flags=re.M)
    assert headings == [
        "Install with Helm",
        "kube-prometheus-stack integration",
        "GitOps (Argo CD and Flux)",
        "Configuration",
        "Observability",
        "Verifying a release",
    ]
    assert "<!-- values-table:start -->" in readme
    assert "### Upgrading" in readme
    assert readme.count("cosign verify") == 2  # the image and the chart
    for target in re.findall(r"\]\(([^)\s]+)\)", readme):
        assert target.startswith(("https://", "#")), (
            f"relative link {target} breaks outside the repo"
        )
        if target.startswith("#"):
            anchors = {
                re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", readme, flags=re.M)
            }
            assert target[1:] in anchors, target


def test_the_subcharts_are_off_by_default(render: Render) -> None:
    manifests = render()
    names = {m["metadata"]["name"] for m in manifests}
    assert not {n for n in names if n.startswith(("tm-otel-collector", "tm-jaeger"))}
    assert one(manifests, "ConfigMap", "tm-task-manager")["data"]["OTEL_SDK_DISABLED"] == "true"


def test_a_typo_in_an_enabled_subchart_values_fails_the_render(render: Render) -> None:
    with pytest.raises(RenderError, match="exportr"):
        render(
            set_values={"otel-collector.enabled": "true", "otel-collector.exportr.endpoint": "x"}
        )


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"otel-collector.nameOverride": "collector"},
        {"otel-collector.fullnameOverride": "traces"},
        {"otel-collector.nameOverride": "collector", "otel-collector.fullnameOverride": "traces"},
    ],
    ids=["default", "nameOverride", "fullnameOverride", "both"],
)
def test_every_reference_to_the_collector_names_what_the_subchart_renders(
    render: Render, overrides: dict[str, str]
) -> None:
    manifests = render(
        set_values={
            "otel-collector.enabled": "true",
            "networkPolicy.enabled": "true",
            "metrics.prometheusRule.enabled": "true",
            **overrides,
        }
    )
    collector = [
        m
        for m in manifests
        if m["metadata"]["labels"].get("app.kubernetes.io/component") == "trace-collector"
    ]
    service = one(collector, "Service")["metadata"]["name"]
    pod_labels = one(collector, "Deployment")["spec"]["template"]["metadata"]["labels"]

    env = one(manifests, "ConfigMap", "tm-task-manager")["data"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{service}:4318"

    policies = find(manifests, "NetworkPolicy")
    assert any(
        p["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items() for p in policies
    ), "no NetworkPolicy selects the renamed collector's pods"
    egress = one(manifests, "NetworkPolicy", "tm-task-manager")["spec"]["egress"]
    selectors = [
        peer["podSelector"]["matchLabels"]
        for rule in egress
        for peer in rule.get("to", [])
        if "podSelector" in peer
    ]
    assert selectors, egress
    assert all(sel.items() <= pod_labels.items() for sel in selectors), (selectors, pod_labels)

    # The Prometheus Operator names a ServiceMonitor's job after the Service it scrapes.
    groups = one(manifests, "PrometheusRule")["spec"]["groups"]
    exprs = "\n".join(rule["expr"] for group in groups for rule in group["rules"])
    assert f'job="{service}"' in exprs
    if service != "tm-otel-collector":
        assert "tm-otel-collector" not in exprs


def _versions_env() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (REPO_ROOT / "ci" / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return {k: v.strip('"') for k, v in pairs}


def _chart(path: str) -> dict:
    return yaml.safe_load((REPO_ROOT / path / "Chart.yaml").read_text())


def test_artifacthub_images_are_the_images_the_chart_deploys(render: Render) -> None:
    announced = {
        i["image"] for i in yaml.safe_load(_chart(".")["annotations"]["artifacthub.io/images"])
    }
    deployed = {
        c["image"]
        for m in render("tests/chart/values/everything.yaml")
        if m["kind"] == "Deployment"
        for c in m["spec"]["template"]["spec"]["containers"]
    }
    assert announced == deployed


def test_subchart_images_are_the_versions_the_e2e_tests_build() -> None:
    versions = _versions_env()
    assert _chart("charts/otel-collector")["appVersion"] == versions["OTELCOL_VERSION"].lstrip("v")
    # Jaeger tags each release twice: module v1.N (built by the e2e tools) is image v2.(N-63),
    # e.g. v1.76.0 / v2.13.0 in its CHANGELOG.
    major, minor, patch = versions["JAEGER_VERSION"].lstrip("v").split(".")
    assert major == "1"
    assert _chart("charts/jaeger")["appVersion"] == f"2.{int(minor) - 63}.{patch}"


def _dashboard_uids(render: Render, *args: str, **set_values: str) -> set[str]:
    manifests = render(*args, set_values={"dashboards.enabled": "true", **set_values})
    return {
        json.loads(text)["uid"]
        for cm in find(manifests, "ConfigMap")
        if cm["metadata"]["labels"].get("grafana_dashboard") == "1"
        for text in cm["data"].values()
    }


def test_two_releases_get_their_own_dashboard_uids_and_a_rerender_keeps_them(
    render: Render,
) -> None:
    first = _dashboard_uids(render)
    assert len(first) == len(DASHBOARDS)
    assert all(len(uid) <= 40 for uid in first)  # Grafana's limit
    assert _dashboard_uids(render) == first
    assert _dashboard_uids(render, fullnameOverride="other").isdisjoint(first)
    assert _dashboard_uids(render, **{"dashboards.uidSuffix": "prod"}) == {
        f"{p.stem}-prod" for p in DASHBOARDS
    }


def test_the_cluster_variable_follows_the_configured_label(render: Render) -> None:
    manifests = render(
        set_values={"dashboards.enabled": "true", "dashboards.clusterLabel": "k8s_cluster"}
    )
    texts = [
        text
        for cm in find(manifests, "ConfigMap")
        if cm["metadata"]["labels"].get("grafana_dashboard") == "1"
        for text in cm["data"].values()
    ]
    assert texts
    for text in texts:
        dashboard = json.loads(text)
        assert "cluster=~" not in text.replace("k8s_cluster=~", "")
        (variable,) = [v for v in dashboard["templating"]["list"] if v["name"] == "cluster"]
        assert variable["query"]["query"].endswith(", k8s_cluster)")


def test_the_slo_dashboard_shows_the_objectives_of_the_rules(render: Render) -> None:
    manifests = render(
        set_values={
            "dashboards.enabled": "true",
            "metrics.prometheusRule.slo.availability.objective": "99.5",
            "metrics.prometheusRule.slo.latency.objective": "95",
            "metrics.prometheusRule.slo.latency.thresholdSeconds": "1.0",
        }
    )
    (slo,) = [
        json.loads(text)
        for cm in find(manifests, "ConfigMap")
        for name, text in cm["data"].items()
        if name == "task-manager-slo.json"
    ]
    constants = {v["name"]: v for v in slo["templating"]["list"] if v["type"] == "constant"}
    assert {name: v["query"] for name, v in constants.items()} == {
        "availability_objective": "99.5",
        "latency_objective": "95",
        "latency_threshold": "1.0",
    }
    assert constants["latency_threshold"]["current"]["value"] == "1.0"
    exprs = [t["expr"] for p in slo["panels"] for t in p.get("targets", [])]
    assert any('le="$latency_threshold"' in e for e in exprs)
    assert any("(1 - $availability_objective / 100)" in e for e in exprs)
