"""ops/: what can be checked without Docker or systemd.

The compose file parses and names only files that exist, its NATS servers route to each
other and its nodes connect to them, Prometheus scrapes every node, the Grafana
provisioning points at the dashboards, and the Dockerfile and systemd unit have what
ops/README.md says they have. (tests/e2e/test_ops_dashboard.py checks the dashboard's
queries against a real node's /metrics.)
"""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

OPS = Path(__file__).resolve().parents[2] / "ops"
REPO = OPS.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((OPS / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


def _host_path(mount: str) -> Path | None:
    source = mount.split(":", 1)[0]
    return (OPS / source).resolve() if source.startswith((".", "/")) else None


def test_every_file_compose_names_exists(compose: dict[str, Any]) -> None:
    named = []
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            path = _host_path(mount)
            if path is not None:
                named.append((name, path))
            else:
                assert mount.split(":", 1)[0] in compose["volumes"], (name, mount)
        build = service.get("build")
        if build:
            context = (OPS / build["context"]).resolve()
            named.append((name, context / build["dockerfile"]))
    assert named
    missing = [(name, str(path)) for name, path in named if not path.exists()]
    assert not missing


def test_the_topology_is_three_nats_three_nodes_postgres_prometheus_grafana(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert set(services) == {
        "nats-1", "nats-2", "nats-3", "icn-1", "icn-2", "icn-3",
        "postgres", "prometheus", "grafana",
    }  # fmt: skip
    for name in ("icn-1", "icn-2", "icn-3", "prometheus", "grafana"):
        for port in services[name].get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)  # loopback only
    for nats in ("nats-1", "nats-2", "nats-3"):
        assert "ports" not in services[nats]


def _nats_conf(service: dict[str, Any]) -> str:
    [conf] = [m for m in service["volumes"] if m.split(":")[1] == "/etc/nats/nats.conf"]
    path = _host_path(conf)
    assert path is not None
    return path.read_text()


def test_the_nats_servers_route_to_each_other_with_jetstream(compose: dict[str, Any]) -> None:
    services = compose["services"]
    names = ["nats-1", "nats-2", "nats-3"]
    server_names = set()
    for name in names:
        conf = _nats_conf(services[name])
        assert "jetstream" in conf and "include ./auth.conf" in conf
        assert re.search(r"cluster\s*\{[^}]*name:\s*icn", conf)
        routes = set(re.findall(r"nats-route://([\w-]+):6222", conf))
        assert routes == set(names), (name, routes)
        server_names.add(re.search(r"server_name:\s*(\S+)", conf)[1])  # type: ignore[index]
        mounts = [m.split(":")[1] for m in services[name]["volumes"]]
        assert "/etc/nats/auth.conf" in mounts  # beside nats.conf, as the include expects
    assert len(server_names) == 3


def test_the_nodes_use_the_cluster_postgres_and_their_own_database(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    databases = set()
    for name in ("icn-1", "icn-2", "icn-3"):
        env = services[name]["environment"]
        urls = env["ICN_NATS_URL"].split(",")
        assert {u.split("//")[1].split(":")[0] for u in urls} == {"nats-1", "nats-2", "nats-3"}
        assert env["ICN_NATS_USER"] == "icn-node"
        assert env["ICN_DATABASE_URL"].startswith("postgresql+psycopg://icn:")
        assert "@postgres:5432/" in env["ICN_DATABASE_URL"]
        databases.add(env["ICN_DATABASE_URL"].rsplit("/", 1)[1])
        for secret in ("ICN_PASSPHRASE", "ICN_JWT_SECRET", "ICN_NATS_PASSWORD"):
            assert env[secret].startswith("${"), secret  # from ops/.env, never in git
        assert set(services[name]["depends_on"]) == {"nats-1", "nats-2", "nats-3", "postgres"}
    init = (OPS / "postgres" / "init.sql").read_text()
    assert databases == set(re.findall(r"CREATE DATABASE (\w+)", init))


def test_every_variable_compose_needs_is_in_the_example_env(compose: dict[str, Any]) -> None:
    text = (OPS / "compose.yaml").read_text()
    needed = set(re.findall(r"\$\{(\w+)", text))
    example = {
        line.split("=", 1)[0]
        for line in (OPS / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert needed == example


def test_prometheus_scrapes_every_node(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((OPS / "prometheus" / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    [static] = job["static_configs"]
    assert sorted(static["targets"]) == ["icn-1:9464", "icn-2:9464", "icn-3:9464"]
    for name in ("icn-1", "icn-2", "icn-3"):  # where each node serves /metrics, unpublished
        node = compose["services"][name]
        assert node["environment"]["ICN_METRICS_ADDR"] == "0.0.0.0:9464"
        assert not any("9464" in str(p) for p in node.get("ports", []))


def test_grafana_provisions_the_datasource_and_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = {m.split(":")[1]: _host_path(m) for m in grafana["volumes"] if _host_path(m)}
    [source] = yaml.safe_load(
        (mounts["/etc/grafana/provisioning/datasources"] / "prometheus.yaml").read_text()
    )["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    [provider] = yaml.safe_load(
        (mounts["/etc/grafana/provisioning/dashboards"] / "icn.yaml").read_text()
    )["providers"]
    folder = provider["options"]["path"]
    dashboards = list(mounts[folder].glob("*.json"))
    assert [d.name for d in dashboards] == ["icn.json"]
    dashboard = json.loads(dashboards[0].read_text())
    titles = " ".join(p["title"] for p in dashboard["panels"])
    for wanted in ("Appends/s", "Refusals/s by code", "lag by coop", "HTTP p99"):
        assert wanted in titles
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"]


def test_the_dockerfile_is_multi_stage_non_root_with_data_volume_and_healthcheck() -> None:
    text = (OPS / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2
    assert "COPY --from=build" in text
    assert re.search(r"^USER icn$", text, re.M)
    assert re.search(r'^VOLUME \["/data"\]$', text, re.M)
    health = re.search(r"^HEALTHCHECK .*\n.*CMD \[\"python\"", text, re.M)
    assert health and "/v1/health" in text
    for source in re.findall(r"^COPY (?!--from)(\S+(?: \S+)*) \S+$", text, re.M):
        for path in source.split():
            assert (REPO / path).exists(), path
    ignore = (REPO / ".dockerignore").read_text()
    for path in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert f"!{path}" in ignore or f"!{path}/**" in ignore, path


def test_the_systemd_unit_is_hardened_and_reads_secrets_from_a_file() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(OPS / "systemd" / "icn-node.service")
    service = unit["Service"]
    expected = {
        "User": "icn",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ReadWritePaths": "/var/lib/icn",
        "StateDirectory": "icn",
        "EnvironmentFile": "/etc/icn/icn.env",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
    }
    assert {k: service.get(k) for k in expected} == expected
    assert service["ExecStart"].endswith("icn node run")
    assert unit["Install"]["WantedBy"] == "multi-user.target"
