"""The default view at 80 columns for a host with several problems (Docker down, a
port taken, DHCP without a lease): its shape is pinned line by line for the plain
renderer, the rich one draws the same model, -v shows everything, wrapped lines keep
a hanging indent, and the closing line offers --fix only when a fix exists."""

from __future__ import annotations

import io
import json
import re

from rich.console import Console
from shipyard_doctor.model import CheckRun, Report, Result
from shipyard_doctor.render import console, text
from shipyard_doctor.render import json as json_render

ROOT = {
    "hostname": "vm",
    "os": "Debian GNU/Linux 12 (bookworm)",
    "kernel": "6.1.0-28-amd64",
    "user": "root",
    "uid": 0,
    "docker_host": "unix:///var/run/docker.sock",
    "stack": "v1",
}
ALICE = {**ROOT, "user": "alice", "uid": 1000}

TCP_HINTS = (
    "drop-in route (fits: dockerd runs from docker.service): sudo mkdir -p "
    "/etc/systemd/system/docker.service.d && printf '%s\\n' '[Service]' "
    "'ExecStart=' 'ExecStart=/usr/bin/dockerd -H fd:// -H tcp://127.0.0.1:4243 "
    "--containerd=/run/containerd/containerd.sock' | sudo tee "
    "/etc/systemd/system/docker.service.d/10-tcp.conf, then sudo sh -c "
    "'systemctl daemon-reload && systemctl restart docker' (a restart stops "
    "containers without a restart policy)",
    "socket route: sudo tee /etc/systemd/system/docker-tcp.socket <<'EOF' ... EOF",
    'daemon.json route: add "hosts": ["fd://", "tcp://127.0.0.1:4243"]',
    "or skip TCP: shipyard-agent v0.3.0+ (and the shipyard/agent container) talk "
    "to the unix socket: -docker /var/run/docker.sock",
)


def problem_host(host=ROOT, fixes=True) -> Report:
    def fix(*ids: str) -> tuple[str, ...]:
        return ids if fixes else ()

    runs = (
        CheckRun(
            "docker-daemon",
            "Docker daemon answers",
            "docker",
            Result.failure(
                "the Docker daemon is not running: /var/run/docker.sock does not exist",
                details=[
                    "endpoint: unix:///var/run/docker.sock (the default)",
                    "dockerd processes: none",
                    "log: no journal (systemd is not running) and none of "
                    "/var/log/docker.log, /var/log/upstart/docker.log exists; set "
                    "[docker] log_file to where dockerd logs",
                    "docker.service: /lib/systemd/system/docker.service (enabled)",
                ],
                hints=[
                    "start Docker: sudo systemctl start docker (or: sudo service "
                    "docker start)"
                ],
            ),
        ),
        CheckRun(
            "docker-tcp",
            "Docker API on TCP for the Shipyard agent",
            "docker",
            Result.failure(
                "the Docker API does not answer on 127.0.0.1:4243",
                details=[f"evidence line {n}" for n in range(1, 8)],
                hints=TCP_HINTS,
                fixes=fix("docker-tcp"),
            ),
            presumes=("docker-daemon",),
        ),
        CheckRun(
            "docker-compat",
            "Shipyard's Docker clients can talk to this daemon",
            "docker",
            Result.skipped("needs docker-daemon (failure) to pass first"),
        ),
        CheckRun(
            "ports",
            "Shipyard's host ports are free",
            "network",
            Result.failure(
                "port 8000 already in use (needed by Shipyard v1)",
                details=[
                    "8000/tcp (shipyard): python3 (pid 4242, user root): "
                    "/usr/bin/python3 -m http.server 8000 --bind :: listens on "
                    "[::]:8000",
                    "80/tcp (shipyard-router): free",
                    "6379/tcp (redis): free",
                    "checked 0.0.0.0 and [::] for each port",
                ],
                hints=[
                    "stop or move the program that holds the port: kill 4242, or "
                    "move Shipyard's port with [stack.ports] shipyard = 8001",
                    "or run the fix with --stop-conflicting",
                ],
                fixes=fix("ports"),
            ),
        ),
        CheckRun(
            "dhcp",
            "Interfaces have an IPv4 address",
            "network",
            Result.warning(
                "eth1's lease expired at 09:12 and no DHCP client renews it",
                details=["eth1: 203.0.113.50/24, lease expired 2026-12-01 09:12"],
                hints=["get a new lease: sudo shipyard-doctor fix dhcp"],
                fixes=fix("dhcp"),
            ),
        ),
        CheckRun(
            "lib-readonly",
            "Library dirs, or a writable place for agent libraries",
            "agent",
            Result.ok("the library dirs are writable", details=["/lib64 on /dev/vda1"]),
        ),
    )
    return Report("0.1.0", host, runs)


def plain(report: Report, **kw) -> str:
    out = io.StringIO()
    text.render_report(report, out, **kw)
    return out.getvalue()


def rich(report: Report, **kw) -> str:
    out = io.StringIO()
    view = Console(file=out, width=80, color_system=None)
    console.render_report(report, view.file, width=80, **kw)
    return out.getvalue()


DEFAULT_VIEW = """\
shipyard-doctor 0.1.0 on vm (Debian GNU/Linux 12 (bookworm), kernel
6.1.0-28-amd64) as root; Docker endpoint unix:///var/run/docker.sock; stack v1

agent
  ok       lib-readonly: the library dirs are writable

docker
  FAILURE  docker-daemon: the Docker daemon is not running: /var/run/docker.sock
           does not exist
             endpoint: unix:///var/run/docker.sock (the default)
             dockerd processes: none
             log: no journal (systemd is not running) and none of ...
             -> start Docker: sudo systemctl start docker (or: sudo service
                docker start)
             (1 more line of evidence: -v)
  blocked  docker-tcp: needs docker-daemon (failure) to pass first (its own
           findings: -v)
  skipped  docker-compat: needs docker-daemon (failure) to pass first

network
  FAILURE  ports: port 8000 already in use (needed by Shipyard v1)
             8000/tcp (shipyard): python3 (pid 4242, user root):
               /usr/bin/python3 -m http.server 8000 --bind :: listens on
               [::]:8000
             -> stop or move the program that holds the port: kill 4242, or move
                Shipyard's port with [stack.ports] shipyard = 8001
             (3 more lines of evidence and 1 more hint: -v)
             fix: shipyard-doctor fix ports
  warning  dhcp: eth1's lease expired at 09:12 and no DHCP client renews it
             eth1: 203.0.113.50/24, lease expired 2026-12-01 09:12
             -> get a new lease: sudo shipyard-doctor fix dhcp
             fix: shipyard-doctor fix dhcp

6 checks: 1 ok, 1 warning, 3 failure, 1 skipped — problems found
2 problems have automatic fixes: shipyard-doctor check --fix (shows each plan
first)
"""

RICH_VIEW = """\
shipyard-doctor 0.1.0 on vm (Debian GNU/Linux 12 (bookworm), kernel
6.1.0-28-amd64) as root; Docker endpoint unix:///var/run/docker.sock; stack v1

agent
  ✓ Library dirs, or a writable place for agent libraries (lib-readonly): the
    library dirs are writable

docker
  ✗ Docker daemon answers (docker-daemon): the Docker daemon is not running:
    /var/run/docker.sock does not exist
      endpoint: unix:///var/run/docker.sock (the default)
      dockerd processes: none
      log: no journal (systemd is not running) and none of ...
      → start Docker: sudo systemctl start docker (or: sudo service docker
        start)
      (1 more line of evidence: -v)
  - Docker API on TCP for the Shipyard agent (docker-tcp): needs docker-daemon
    (failure) to pass first (its own findings: -v)
  - Shipyard's Docker clients can talk to this daemon (docker-compat): needs
    docker-daemon (failure) to pass first

network
  ✗ Shipyard's host ports are free (ports): port 8000 already in use (needed by
    Shipyard v1)
      8000/tcp (shipyard): python3 (pid 4242, user root): /usr/bin/python3 -m
        http.server 8000 --bind :: listens on [::]:8000
      80/tcp (shipyard-router): free
      → stop or move the program that holds the port: kill 4242, or move
        Shipyard's port with [stack.ports] shipyard = 8001
      (2 more lines of evidence and 1 more hint: -v)
      fix: shipyard-doctor fix ports
  ! Interfaces have an IPv4 address (dhcp): eth1's lease expired at 09:12 and no
    DHCP client renews it
      eth1: 203.0.113.50/24, lease expired 2026-12-01 09:12
      → get a new lease: sudo shipyard-doctor fix dhcp
      fix: shipyard-doctor fix dhcp

6 checks: 1 ok, 1 warning, 3 failure, 1 skipped — problems found
2 problems have automatic fixes: shipyard-doctor check --fix (shows each plan
first)
"""


def test_default_plain_view_is_pinned_at_80_columns():
    rendered = plain(problem_host())
    assert rendered == DEFAULT_VIEW
    assert len(rendered.splitlines()) == 36
    assert max(len(line) for line in rendered.splitlines()) <= 80
    assert rendered.isascii() or set(re.sub(r"[ -~\n]", "", rendered)) == {"—"}


def test_rich_view_draws_the_same_model():
    rendered = rich(problem_host())
    lines = rendered.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert not any(line != line.rstrip() for line in lines)  # no trailing blanks
    assert lines[3:6] == [
        "agent",
        "  ✓ Library dirs, or a writable place for agent libraries (lib-readonly): the",
        "    library dirs are writable",
    ]
    assert (
        "  - Docker API on TCP for the Shipyard agent (docker-tcp): needs docker-daemon"
        in lines
    )
    hint = "      → start Docker: sudo systemctl start docker (or: sudo service docker"
    assert lines[lines.index(hint) + 1] == "        start)"  # under the hint's text
    evidence = (
        "      8000/tcp (shipyard): python3 (pid 4242, user root): /usr/bin/python3 -m"
    )
    assert lines[lines.index(evidence) + 1] == (
        "        http.server 8000 --bind :: listens on [::]:8000"
    )
    assert "      fix: shipyard-doctor fix ports" in lines
    assert "evidence line" not in rendered  # docker-tcp's own failure: only with -v
    assert rendered == RICH_VIEW and len(lines) == 40  # titles make lines longer


def test_verbose_shows_all_evidence_and_every_route_in_full():
    report = problem_host()
    for rendered in (plain(report, verbose=True), rich(report, verbose=True)):
        flat = " ".join(rendered.split())
        for run in report.runs:
            for line in (*run.result.details, *run.result.hints):
                assert " ".join(line.split()) in flat, line
        assert "(0.00 s)" in rendered and "more line" not in rendered


def test_wrapped_lines_keep_a_hanging_indent():
    lines = plain(problem_host()).splitlines()
    first = next(i for i, line in enumerate(lines) if "FAILURE  docker-daemon" in line)
    assert lines[first + 1] == "           does not exist"  # under the check's id
    evidence = lines.index(
        "             8000/tcp (shipyard): python3 (pid 4242, user root):"
    )
    assert lines[evidence + 1 : evidence + 3] == [
        "               /usr/bin/python3 -m http.server 8000 --bind :: listens on",
        "               [::]:8000",
    ]
    lines = plain(problem_host(), verbose=True).splitlines()
    route = next(i for i, line in enumerate(lines) if "-> drop-in route" in line)
    continuation = lines[route + 1 : route + 6]
    assert all(line.startswith(" " * 16) and line[16] != " " for line in continuation)
    rich_lines = rich(problem_host(), verbose=True).splitlines()
    route = next(i for i, line in enumerate(rich_lines) if "→ drop-in route" in line)
    assert rich_lines[route].index("drop-in") == 8
    assert all(
        line.startswith(" " * 8) and line[8] != " "
        for line in rich_lines[route + 1 : route + 6]
    )


def test_closing_line_names_fix_only_when_fixes_exist():
    assert "--fix" not in plain(problem_host(fixes=False))
    assert "--fix" not in rich(problem_host(fixes=False))
    assert "fix:" not in plain(problem_host(fixes=False))
    tail = " ".join(plain(problem_host(ALICE)).splitlines()[-2:])
    assert tail == (
        "2 problems have automatic fixes: sudo shipyard-doctor check --fix (shows "
        "each plan first)"
    )
    assert "fix: sudo shipyard-doctor fix ports" in plain(problem_host(ALICE))
    # While --fix runs, the report does not offer it again.
    assert "--fix" not in plain(problem_host(), offer_fixes=False)


def test_json_is_unchanged_by_the_view():
    out = io.StringIO()
    json_render.render_report(problem_host(), out)
    doc = json.loads(out.getvalue())
    tcp = next(c for c in doc["checks"] if c["id"] == "docker-tcp")
    assert set(tcp) == {
        "id",
        "title",
        "category",
        "status",
        "summary",
        "details",
        "hints",
        "fixes",
        "data",
        "ignored",
        "duration_ms",
    }
    assert tcp["status"] == "failure" and len(tcp["details"]) == 7
