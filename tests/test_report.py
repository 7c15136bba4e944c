"""`report` on real infrastructure: a namespace dockerd running stand-ins of the v1
stack (busybox images tagged like Shipyard's) with secrets planted everywhere a real
host keeps them; a Docker socket that never answers; no Docker at all; and a run as
nobody; --from and --no-redact. (The redactor alone: tests/test_report_redact.py.)"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import socket
import stat
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import quote, quote_plus

import jsonschema
import pytest
from doctor_cli import DoctorRun, run_doctor
from infra import DockerHost
from markdown_it import MarkdownIt

USERS = ("admin", "shipyard", "ciuser", "mirror", "proxyuser", "puser", "u", "root")


def token(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(8)}"


def pem_key() -> tuple[str, list[str]]:
    body = base64.b64encode(secrets.token_bytes(144)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    text = (
        "-----BEGIN PRIVATE KEY-----\n"
        + "\n".join(lines)
        + "\n-----END PRIVATE KEY-----"
    )
    return text, lines


@dataclass
class Planted:
    host: DockerHost
    config: Path
    home: Path
    secrets: dict[str, str]  # description -> value that must never leave

    def run(self, *args: str, **kw) -> DoctorRun:
        return run_doctor(
            "report",
            *args,
            netns=self.host.netns,
            config=self.config,
            env={"HOME": str(self.home)},
            **kw,
        )


def deploy_v1(host: DockerHost, env: dict[str, dict[str, str]], script: str) -> None:
    """The v1 stack's containers from the stand-in image, named and published like
    the 2014 deploy script did; `shipyard` prints *script*'s lines as its log."""
    image = host.client.images.get(host.image)
    for service, port in (
        ("redis", 6379),
        ("db", None),
        ("router", None),
        ("lb", 80),
        ("shipyard", 8000),
    ):
        repo = f"shipyard/{service}"
        image.tag(repo, "latest")
        name = "shipyard" if service == "shipyard" else f"shipyard_{service}"
        command = (
            ["sh", "-c", script + "; exec sleep 3600"]
            if service == "shipyard"
            else ["sleep", "3600"]
        )
        host.client.containers.run(
            f"{repo}:latest",
            command,
            name=name,
            detach=True,
            environment=env.get(service, {}),
            ports={f"{port}/tcp": port} if port else {},
        )


@pytest.fixture
def planted(clean_docker_host, tmp_path) -> Planted:
    host = clean_docker_host
    s = {
        "admin password (env, echoed in the log)": token("adm"),
        "db password (env of two containers)": token("dbp"),
        "django secret key": token("sk"),
        "api token": token("tok"),
        "password in DATABASE_URL": token("dburl"),
        "aws secret access key": token("aws"),
        "mixed-case DbPassword": token("mixed"),
        "github token": token("ghp"),
        "password with spaces": f"fifty leagues {token('sea')}",
        "ApiKey header in a log": token("apikey"),
        "redis URL password in a log": token("redis"),
        "password URL-encoded in a log": f"p@ss/{token('enc')}",
        "AgentKey header in a log": token("agent"),
        "registry mirror URL password (daemon.json)": token("mirror"),
        "proxy password (daemon.json)": token("proxy"),
        "registry auth (config.json)": token("reg"),
        "identity token (config.json)": token("ident"),
        "proxy password (unit drop-in)": token("unitproxy"),
        "registry token (unit drop-in)": token("unittok"),
        "auth token (/etc/default/docker)": token("deftok"),
        "bearer token (the doctor's config)": token("bearer"),
        "proxy password (dockerd log)": token("logproxy"),
    }
    key, key_lines = pem_key()
    log_key, log_key_lines = pem_key()
    for i, line in enumerate(key_lines):
        s[f"PEM key line {i} (container env)"] = line
    for i, line in enumerate(log_key_lines):
        s[f"PEM key line {i} (dockerd log)"] = line
    admin = s["admin password (env, echoed in the log)"]
    db_url = s["password in DATABASE_URL"]
    unit_proxy = s["proxy password (unit drop-in)"]
    mirror = s["registry mirror URL password (daemon.json)"]
    proxy = s["proxy password (daemon.json)"]
    log_proxy = s["proxy password (dockerd log)"]
    bearer = s["bearer token (the doctor's config)"]
    encoded = s["password URL-encoded in a log"]
    basic = base64.b64encode(f"admin:{admin}".encode()).decode()
    script = "; ".join(
        f"echo '{line}'"
        for line in (
            f"update_admin_user: admin password is {admin}",
            f"api: Authorization: ApiKey admin:{s['ApiKey header in a log']}",
            f"celery: broker redis://:{s['redis URL password in a log']}@redis:6379/0",
            f"db: postgres://shipyard:{quote(encoded, safe='')}@db:5432/shipyard",
            f"agent: Authorization: AgentKey {s['AgentKey header in a log']}",
            f"login header {basic}",
        )
    )
    deploy_v1(
        host,
        {
            "db": {"DB_PASS": s["db password (env of two containers)"]},
            "shipyard": {
                "ADMIN_PASS": admin,
                "DB_ENV_DB_PASS": s["db password (env of two containers)"],
                "SECRET_KEY": s["django secret key"],
                "API_TOKEN": s["api token"],
                "DATABASE_URL": f"postgres://shipyard:{db_url}@db/shipyard",
                "AWS_SECRET_ACCESS_KEY": s["aws secret access key"],
                "DbPassword": s["mixed-case DbPassword"],
                "GITHUB_TOKEN": s["github token"],
                "MAIL_PASSWORD": s["password with spaces"],
                "SMTP_PASS": encoded,
                "TLS_KEY": key,
                "REDIS_HOST": "redis",
            },
        },
        script,
    )
    # Recognised by deploy's labels rather than by name; an unrelated one is not.
    host.client.containers.run(
        host.image,
        ["sleep", "3600"],
        name="my-shipyard-ui",
        detach=True,
        labels={"stack": "v1", "service": "shipyard"},
    )
    host.client.containers.run(
        host.image,
        ["sleep", "3600"],
        name="unrelated",
        detach=True,
        labels={"com.docker.compose.service": "web"},
    )
    etc = tmp_path / "etc"
    (etc / "systemd/docker.service.d").mkdir(parents=True)
    (etc / "systemd/docker.service").write_text(
        "[Service]\nExecStart=/usr/sbin/dockerd -H fd://\n"
    )
    (etc / "systemd/docker.service.d/proxy.conf").write_text(
        "[Service]\n"
        f'Environment="HTTPS_PROXY=http://puser:{unit_proxy}@proxy.example:3128"\n'
        f'Environment="DOCKER_REGISTRY_TOKEN={s["registry token (unit drop-in)"]}"\n'
    )
    (etc / "default-docker").write_text(
        'DOCKER_OPTS="--dns 198.51.100.53"\n'
        f"export DOCKER_AUTH_TOKEN={s['auth token (/etc/default/docker)']}\n"
    )
    (etc / "daemon.json").write_text(
        json.dumps(
            {
                "registry-mirrors": [f"https://mirror:{mirror}@mirror.example.com"],
                "proxies": {
                    "http-proxy": f"http://proxyuser:{proxy}@proxy.example:3128"
                },
                "log-driver": "json-file",
            },
            indent=2,
        )
    )
    (etc / "dockerd.log").write_text(
        'time="2026-12-01T10:00:00Z" level=info msg="Starting up"\n'
        f'time="2026-12-01T10:00:01Z" level=info msg="proxy http://u:{log_proxy}@p:3128"\n'
        f"{log_key}\n"
        'time="2026-12-01T10:00:02Z" level=info msg="API listen on /run/docker.sock"\n'
    )
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    registry_auth = base64.b64encode(
        f"ciuser:{s['registry auth (config.json)']}".encode()
    ).decode()
    (home / ".docker/config.json").write_text(
        json.dumps(
            {
                "auths": {
                    "registry.example.com": {"auth": registry_auth},
                    "other.example.com": {
                        "identitytoken": s["identity token (config.json)"]
                    },
                }
            }
        )
    )
    s["registry auth field itself (base64 of user:pass)"] = registry_auth
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[docker]
host = "{host.dockerd.url}"
daemon_json = "{etc / "daemon.json"}"
log_file = "{etc / "dockerd.log"}"
restart_command = "curl -H 'Authorization: Bearer {bearer}' http://127.0.0.1:9/restart"

[host]
systemd_dirs = ["{etc / "systemd"}"]
init_defaults = ["{etc / "default-docker"}"]

[report]
timeout = 30  # not a test of timeouts: room for a loaded machine
"""
    )
    assert len(s) >= 20
    return Planted(host, config, home, s)


def encodings(value: str) -> set[str]:
    forms = {value, quote(value, safe=""), quote_plus(value)}
    forms.add(base64.b64encode(value.encode()).decode().rstrip("="))
    for user in USERS:
        forms.add(base64.b64encode(f"{user}:{value}".encode()).decode().rstrip("="))
    return forms


def assert_no_secret(text: str, planted: dict[str, str], where: str) -> None:
    for what, value in planted.items():
        for form in encodings(value):
            assert form not in text, f"{what} ({form!r}) leaked into {where}"


def tar_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {
            m.name.split("/", 1)[1]: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def schema() -> dict:
    text = (
        resources.files("shipyard_doctor") / "report" / "report.schema.json"
    ).read_text()
    return json.loads(text)


def table_rows(markdown: str) -> list[list[str]]:
    """The first table of the document, as rows of cell texts (header excluded)."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    rows, row, in_body = [], None, False
    for tok in tokens:
        if tok.type == "tbody_open":
            in_body = True
        elif tok.type == "tbody_close":
            return rows
        elif in_body and tok.type == "tr_open":
            row = []
        elif in_body and tok.type == "tr_close":
            rows.append(row)
        elif in_body and tok.type == "inline" and row is not None:
            row.append(tok.content)
    return rows


def test_planted_secrets_never_leave_in_any_format(planted, tmp_path):
    out = {fmt: tmp_path / f"r.{fmt}" for fmt in ("md", "json")}
    out["tar"] = tmp_path / "r.tar.gz"
    runs = {
        fmt: planted.run("-o", str(path), "--format", fmt) for fmt, path in out.items()
    }
    for fmt, run in runs.items():
        assert run.code == 0, run.stderr
        assert f"report written to {out[fmt]}" in run.stdout
        assert stat.S_IMODE(out[fmt].stat().st_mode) == 0o600
    markdown = out["md"].read_text()
    doc = json.loads(out["json"].read_text())
    members = tar_members(out["tar"])
    assert_no_secret(markdown, planted.secrets, "report.md")
    assert_no_secret(out["json"].read_text(), planted.secrets, "report.json")
    for name, data in members.items():
        assert_no_secret(data.decode(), planted.secrets, f"tarball {name}")

    # The top says what was redacted, by kind.
    assert markdown.splitlines()[2].startswith("> **Redacted:** ")
    counts = doc["redaction"]["counts"]
    for kind in ("env", "url-password", "header", "private-key", "registry-auth"):
        assert counts.get(kind, 0) > 0, counts
    # What was collected is still there: the stack, its ports and logs, the files.
    containers = {
        c["name"]: c
        for s in doc["sections"]
        if s["id"] == "containers"
        for c in s["data"]["containers"]
    }
    assert set(containers) == {
        "my-shipyard-ui",
        "shipyard",
        "shipyard_db",
        "shipyard_lb",
        "shipyard_redis",
        "shipyard_router",
    }
    assert (
        containers["shipyard"]["ports"]["8000/tcp"] == ["0.0.0.0:8000", ":::8000"]
        or "0.0.0.0:8000" in containers["shipyard"]["ports"]["8000/tcp"]
    )
    assert (
        "update_admin_user: admin password is [REDACTED:env]"
        in containers["shipyard"]["log"]
    )
    assert "REDIS_HOST=redis" in containers["shipyard"]["env"]
    assert re.search(
        r"-----BEGIN PRIVATE KEY-----\s*\[REDACTED:private-key\]\s*-----END",
        members["raw/dockerd-log/dockerd.log"].decode(),
    )
    assert "raw/dockerd-config/docker.service.d/proxy.conf" in members
    assert "raw/dockerd-config/client-config.json" in members

    # The JSON validates against the shipped schema; the Markdown table has a row
    # per check.
    jsonschema.validate(doc, schema())
    assert len(markdown) < 65_536
    rows = table_rows(markdown)
    assert [r[0].strip("`") for r in rows] == [c["id"] for c in doc["checks"]]
    assert len(rows) >= 10
    assert "<details>" in markdown

    # The tarball: report.md, report.json, raw files and a manifest of sha256s.
    manifest = json.loads(members.pop("manifest.json"))
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert set(listed) == set(members)
    for name, data in members.items():
        assert hashlib.sha256(data).hexdigest() == listed[name]
    assert {"report.md", "report.json"} <= set(members)


def test_pseudonyms_are_consistent_across_sections_and_formats(planted, tmp_path):
    tar = tmp_path / "p.tar.gz"
    run = planted.run("-o", str(tar), "--format", "tar", "--pseudonymize")
    assert run.code == 0, run.stderr
    mapping_path = Path(f"{tar}.pseudonyms.json")
    assert (
        f"pseudonym mapping (keep it private; it is not in the report): {mapping_path}"
        in run.stdout
    )
    assert stat.S_IMODE(mapping_path.stat().st_mode) == 0o600
    mapping = json.loads(mapping_path.read_text())
    members = {k: v.decode() for k, v in tar_members(tar).items()}
    everything = "\n".join(members.values())
    inspect = planted.host.client.api.inspect_container("shipyard")
    ip = inspect["NetworkSettings"]["IPAddress"]
    mac = inspect["NetworkSettings"]["MacAddress"].lower()
    assert ip and ip in mapping["ipv4"] and mac in mapping["mac"]
    for real in [*mapping["ipv4"], *mapping["mac"]]:
        assert real not in everything, f"{real} is in the pseudonymized report"
    stand_in = mapping["ipv4"][ip]
    doc = json.loads(members["report.json"])
    sections = {s["id"]: s for s in doc["sections"]}
    # The same container address has the same stand-in in the nat rules, the
    # container's inspect file, the JSON and the Markdown.
    assert stand_in in "\n".join(sections["nat"]["data"]["dnat"])
    assert stand_in in members["raw/containers/containers/shipyard.inspect.json"]
    assert stand_in in members["report.md"]
    gateway = mapping["ipv4"][inspect["NetworkSettings"]["Gateway"]]
    assert gateway in sections["network"]["text"]
    assert gateway in members["report.md"]
    assert (
        mapping["mac"][mac]
        in members["raw/containers/containers/shipyard.inspect.json"]
    )
    # The mapping itself never enters the report.
    assert not any(name.endswith(".pseudonyms.json") for name in members)
    assert json.dumps(mapping["ipv4"]) not in everything
    assert doc["pseudonymized"] is True
    # This machine's name too, the same in the host summary and the system section.
    hostname = socket.gethostname()
    assert mapping["hostname"][hostname] == doc["host"]["hostname"]
    assert sections["system"]["data"]["hostname"] == doc["host"]["hostname"]
    # Documentation addresses identify nobody and stay (the daemon's DNS option).
    assert "198.51.100.53" in everything


def test_a_hanging_docker_api_gives_a_report_in_time(netns, hanging_socket, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        "[docker]\ntimeout = 30\n[checks]\ntimeout = 2\n[report]\ntimeout = 2\n"
    )
    out = tmp_path / "r.json"
    run = run_doctor(
        "report",
        "--format",
        "json",
        "-o",
        str(out),
        "--docker-host",
        hanging_socket.url,
        netns=netns,
        config=config,
    )
    assert run.code == 0, run.stderr
    assert run.elapsed < 2 + 3, f"took {run.elapsed:.2f} s"
    doc = json.loads(out.read_text())
    sections = {s["id"]: s for s in doc["sections"]}
    for hung in ("docker", "containers"):
        assert sections[hung]["status"] == "timeout"
        assert sections[hung]["summary"].startswith("timed out after 2 s")
    assert sections["system"]["status"] == "ok"
    assert sections["network"]["status"] == "ok"
    daemon = next(c for c in doc["checks"] if c["id"] == "docker-daemon")
    assert daemon["status"] == "error" and "timed out" in daemon["summary"]
    assert "Docker version and info: timeout: timed out after 2 s" in run.stdout


def test_no_docker_at_all_still_gives_a_report(netns, tmp_path):
    # No -o: a timestamped file in the current directory, mode 0600.
    argv = [sys.executable, "-m", "shipyard_doctor", "report", "--docker-host"]
    argv.append(f"unix://{tmp_path}/docker.sock")
    done = subprocess.run(
        netns.nsenter_argv(argv), cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    (out,) = tmp_path.glob("shipyard-doctor-report-*.md")
    assert re.fullmatch(r"shipyard-doctor-report-\d{8}-\d{6}\.md", out.name)
    assert f"report written to {out.name} (md, " in done.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    markdown = out.read_text()
    rows = table_rows(markdown)
    daemon = next(r for r in rows if r[0] == "`docker-daemon`")
    assert "failure" in daemon[1] and "not running" in daemon[2]
    assert "| Docker version and info | skipped | the Docker API at unix://" in markdown
    assert "### Could not be read" in markdown
    # -o - writes the same Markdown to stdout, and the outcome to stderr.
    run = run_doctor("report", "-o", "-", *argv[-2:], netns=netns)
    assert run.code == 0 and run.stdout.startswith("# shipyard-doctor report\n")
    assert "report written to stdout (md, " in run.stderr


def test_as_nobody_the_report_says_what_it_could_not_read(
    clean_docker_host, unprivileged_venv
):
    host = clean_docker_host
    run = run_doctor(
        "report",
        "--format",
        "json",
        "-o",
        "-",
        "--docker-host",
        host.dockerd.url,
        python=str(unprivileged_venv / "bin" / "python"),
        as_nobody=True,
        netns=host.netns,
    )
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    jsonschema.validate(doc, schema())
    sections = {s["id"]: s for s in doc["sections"]}
    assert doc["host"]["user"] == "nobody"
    docker = sections["docker"]
    assert docker["status"] == "skipped"
    assert any("Permission denied" in u for u in docker["unreadable"]), docker
    assert sections["nat"]["unreadable"] == ["iptables-save: iptables-save needs root"]
    assert "report written to stdout" in run.stderr


def test_from_saved_results_reuses_them(netns, tmp_path):
    saved = run_doctor("check", "--json", "--only", "ports", netns=netns)
    results = tmp_path / "results.json"
    results.write_text(saved.stdout)
    out = tmp_path / "r.json"
    run = run_doctor(
        "report",
        "--from",
        str(results),
        "--format",
        "json",
        "-o",
        str(out),
        netns=netns,
    )
    assert run.code == 0, run.stderr
    doc = json.loads(out.read_text())
    assert [c["id"] for c in doc["checks"]] == ["ports"]
    assert doc["checks_from"] == str(results)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"schema": 1}', "not the output of `check --json`"),
        (
            '{"schema": 1, "checks": [{"id": "x", "status": "fine", "summary": ""}]}',
            "checks[0] needs an id, a status",
        ),
    ],
)
def test_a_bad_results_file_is_one_line_and_exit_2(tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    run = run_doctor("report", "--from", str(bad), "-o", str(tmp_path / "r.md"))
    assert run.code == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], run.stderr
    assert lines[0].startswith(f"shipyard-doctor: error: --from {bad}: ")
    assert not (tmp_path / "r.md").exists()


def test_no_redact_needs_a_terminal_or_yes(planted, tmp_path):
    out = tmp_path / "r.md"
    refused = planted.run("--no-redact", "-o", str(out))
    assert refused.code == 2 and "confirm on a terminal, or add --yes" in refused.stderr
    assert not out.exists()
    run = planted.run("--no-redact", "--yes", "-o", str(out), "--log-lines", "5")
    assert run.code == 0, run.stderr
    markdown = out.read_text()
    assert markdown.splitlines()[2].startswith("> **⚠ UNREDACTED:**")
    assert planted.secrets["django secret key"] in markdown


def test_no_redact_asks_on_a_terminal(netns, tmp_path):
    import pty

    out = tmp_path / "r.md"
    argv = [sys.executable, "-m", "shipyard_doctor", "report", "--no-redact"]
    argv += ["-o", str(out), "--docker-host", f"unix://{tmp_path}/docker.sock"]
    for answer, code in (("n\n", 3), ("y\n", 0)):
        leader, follower = pty.openpty()
        try:
            os.write(leader, answer.encode())
            done = subprocess.run(
                netns.nsenter_argv(argv),
                stdin=follower,
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            os.close(leader)
            os.close(follower)
        assert done.returncode == code, done.stderr
        assert "Write it unredacted? [y/N]" in done.stderr
        assert out.exists() == (answer == "y\n")
    assert "UNREDACTED" in out.read_text().splitlines()[2]


@pytest.mark.parametrize(
    ("vendor", "product", "osrelease", "marker", "kinds"),
    [
        ("innotek GmbH", "VirtualBox", "6.1.0-18-amd64", None, ["VirtualBox"]),
        ("QEMU", "Standard PC (Q35 + ICH9, 2009)", "6.1.0", None, ["KVM/QEMU"]),
        ("", "", "5.15.153.1-microsoft-standard-WSL2", None, ["WSL2"]),
        ("", "", "6.1.0", "docker", ["container (docker)"]),
    ],
)
def test_virtualization_is_recognised_from_files_anyone_can_read(
    netns, tmp_path, vendor, product, osrelease, marker, kinds
):
    dmi = tmp_path / "dmi"
    proc = tmp_path / "proc"
    (proc / "sys/kernel").mkdir(parents=True)
    (proc / "sys/kernel/osrelease").write_text(osrelease + "\n")
    flags = "fpu vme de pse" + (" hypervisor" if vendor else "")
    (proc / "cpuinfo").write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    if vendor:
        dmi.mkdir()
        (dmi / "sys_vendor").write_text(vendor + "\n")
        (dmi / "product_name").write_text(product + "\n")
    markers = [str(tmp_path / "dockerenv")]
    if marker:
        (tmp_path / "dockerenv").write_text(marker + "\n")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[host]\ndmi_dir = "{dmi}"\nproc_dir = "{proc}"\n'
        f"container_markers = {json.dumps(markers)}\n"
    )
    argv = ["report", "--format", "json", "-o", "-", "--docker-host"]
    run = run_doctor(*argv, f"unix://{tmp_path}/d.sock", netns=netns, config=config)
    assert run.code == 0, run.stderr
    section = next(s for s in run.doc["sections"] if s["id"] == "virtualization")
    assert section["data"]["kinds"] == kinds
    assert section["data"]["hypervisor_flag"] == bool(vendor)
    # /proc/self/mountinfo is read under [host] proc_dir too: said, not guessed.
    mounts = next(s for s in run.doc["sections"] if s["id"] == "mounts")
    assert mounts["unreadable"][0].startswith(f"{proc}/self/mountinfo: ")


def test_a_tarball_cannot_go_to_stdout():
    run = run_doctor("report", "--format", "tar", "-o", "-")
    assert run.code == 2
    assert run.stderr.strip() == (
        "shipyard-doctor: error: a tarball cannot go to stdout: give -o FILE.tar.gz"
    )
