"""Tests of the test bed itself: every fixture does what it promises, for real.

The checks' tests trust these fixtures, so each one is proven here against the
kernel's own view (``ip netns list``, ``ss``, /proc), including that teardown
happens when the test using a fixture fails midway (via pytester runs of small
inner test files that fail on purpose).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import docker
import infra
import pytest
import shipyard_doctor
from infra import (
    STANDIN_IMAGE,
    Dockerd,
    DockerHost,
    HangingUnixServer,
    Listeners,
    Netns,
    list_netns,
    listening_sockets,
    run_as_nobody,
    tag_image,
)

HERE = Path(__file__).resolve().parent
DOCKERD_TOOLS = (
    "dockerd",
    "containerd",
    "runc",
    "iptables",
    "busybox",
    "ip",
    "nsenter",
)


def _setup_testbed(pytester: pytest.Pytester) -> None:
    """Give an inner pytester run this directory's conftest.py, infra.py and
    machine.py."""
    pytester.makeconftest((HERE / "conftest.py").read_text())
    (pytester.path / "infra.py").write_text((HERE / "infra.py").read_text())
    (pytester.path / "machine.py").write_text((HERE / "machine.py").read_text())


def _ss_listeners(netns: Netns) -> dict[str, set[int]]:
    """``ss -ltnpH`` in *netns*: local "addr:port" -> pids of the listeners."""
    out = netns.run(["ss", "-ltnpH"], check=True).stdout
    found: dict[str, set[int]] = {}
    for line in out.splitlines():
        fields = line.split()
        pids = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        found.setdefault(fields[3], set()).update(pids)
    return found


def _in_netns(pid: int, netns: Netns) -> bool:
    return os.stat(f"/proc/{pid}/ns/net").st_ino == netns.inode()


def _gone(pid: int) -> bool:
    """The pid no longer exists (or is only a zombie awaiting its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            with contextlib.suppress(OSError):
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
                if text.encode() in cmd:
                    found.append(f"{entry}: {cmd.decode(errors='replace')}")
    return found


def _mounts_mentioning(text: str) -> list[str]:
    return [
        line for line in Path("/proc/mounts").read_text().splitlines() if text in line
    ]


def _python_in(netns: Netns, code: str, timeout: float = 30.0) -> str:
    """Run a python snippet inside *netns* and return its stdout (must exit 0)."""
    r = netns.run([sys.executable, "-I", "-c", textwrap.dedent(code)], timeout=timeout)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout.strip()


# --------------------------------------------------------------------------
# Namespaces and listeners
# --------------------------------------------------------------------------


def test_netns_is_created_and_gone_after_delete(
    require_infra: Callable[..., None],
) -> None:
    require_infra("ip", "nsenter")
    ns = Netns.create()
    try:
        assert ns.name in list_netns()
        assert ns.inode() != os.stat("/proc/self/ns/net").st_ino
        assert (
            "LOWER_UP" in ns.run(["ip", "-o", "link", "show", "lo"], check=True).stdout
        )
        sleeper = ns.spawn(["sleep", "60"])
        # nsenter without --fork execs in place: the Popen pid is sleep itself.
        assert os.path.basename(os.readlink(f"/proc/{sleeper.pid}/exe")) == "sleep"
        assert _in_netns(sleeper.pid, ns)
        assert ns.pids() == [sleeper.pid]
    finally:
        ns.delete()
    assert ns.name not in list_netns()
    assert sleeper.poll() is not None
    ns.delete()  # idempotent


def test_listeners_are_visible_inside_the_namespace_only(
    netns: Netns, listeners: Listeners
) -> None:
    root_before = {s.port for s in listening_sockets(os.getpid())}
    web = listeners.tcp(netns, "127.0.0.1", 80)
    v6 = listeners.tcp(netns, "::", 8000, v6only=True)
    redis = listeners.redis(netns, 6379)

    seen = _ss_listeners(netns)
    assert seen.get("127.0.0.1:80") == {web.pid}, seen
    assert seen.get("[::]:8000") == {v6.pid}, seen
    assert seen.get("0.0.0.0:6379") == {redis.pid}, seen
    assert not {"0.0.0.0:8000", "*:8000"} & seen.keys(), seen
    assert {s.port for s in listening_sockets(os.getpid())} == root_before

    # [::]:8000 really is IPv6-only, and redis really answers.
    probe = _python_in(
        netns,
        """
        import socket
        def connect(family, addr):
            with socket.socket(family) as s:
                s.settimeout(5)
                return s.connect_ex(addr)
        print(connect(socket.AF_INET, ("127.0.0.1", 8000)),
              connect(socket.AF_INET6, ("::1", 8000)))
        with socket.create_connection(("127.0.0.1", 6379), timeout=5) as s:
            s.sendall(b"PING\\r\\n")
            print(s.recv(64).decode().strip())
    """,
    )
    refused, accepted, pong = probe.split()
    assert int(refused) != 0 and int(accepted) == 0, probe
    assert pong == "+PONG"

    listeners.stop_all()
    assert all(p.poll() is not None for p in (web, v6, redis))
    assert _ss_listeners(netns) == {}


def test_fixtures_tear_down_when_the_test_fails(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    require_infra: Callable[..., None],
) -> None:
    require_infra("ip", "nsenter", "redis-server")
    record = pytester.path / "record.json"
    monkeypatch.setenv("SDT_RECORD", str(record))
    _setup_testbed(pytester)
    pytester.makepyfile(
        test_inner="""
        import json, os
        from pathlib import Path

        def test_fails_midway(netns, listeners, hanging_socket):
            procs = [listeners.tcp(netns, "127.0.0.1", 80), listeners.redis(netns)]
            Path(os.environ["SDT_RECORD"]).write_text(json.dumps({
                "netns": netns.name,
                "pids": [p.pid for p in procs],
                "dirs": [str(d) for p in procs for d in p.owned_dirs],
                "socket_dir": str(hanging_socket.dir),
            }))
            raise AssertionError("deliberate failure midway")
    """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(failed=1)
    seen = json.loads(record.read_text())
    assert seen["netns"] not in list_netns()
    assert all(_gone(pid) for pid in seen["pids"]), seen
    assert not any(Path(d).exists() for d in [*seen["dirs"], seen["socket_dir"]]), seen


# --------------------------------------------------------------------------
# The hanging socket
# --------------------------------------------------------------------------


def test_hanging_socket_accepts_then_never_answers(
    hanging_socket: HangingUnixServer,
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        s.connect(str(hanging_socket.path))
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            s.recv(1)
        assert time.monotonic() - started >= 0.45
    # The docker SDK, pointed at it, hangs until its own timeout.
    with pytest.raises(docker.errors.DockerException, match="timed out"):
        docker.DockerClient(base_url=hanging_socket.url, timeout=1)


# --------------------------------------------------------------------------
# dockerd
# --------------------------------------------------------------------------


def test_session_dockerd_runs_a_container_publishing_a_port(
    clean_docker_host: DockerHost,
) -> None:
    host = clean_docker_host
    assert host.client.ping()
    assert _in_netns(host.dockerd.pid, host.netns)
    pidfile = Path(host.dockerd.config["pidfile"])
    assert pidfile.read_text().strip() == str(host.dockerd.pid)
    root_before = {s.port for s in listening_sockets(os.getpid())}

    web = host.client.containers.run(
        host.image_tag,
        [
            "sh",
            "-c",
            "echo standin-ok > /var/www/index.html"
            " && exec httpd -f -p 8000 -h /var/www",
        ],
        detach=True,
        ports={"8000/tcp": 8000},
        name=f"sdt-web-{secrets.token_hex(3)}",
    )
    web.reload()
    assert web.status == "running"

    # docker-proxy listens in the namespace (as ss inside it sees), not in ours.
    in_ns = {s.port for s in listening_sockets(host.dockerd.pid)}
    assert 8000 in in_ns
    assert any(a.endswith(":8000") for a in _ss_listeners(host.netns))
    assert {s.port for s in listening_sockets(os.getpid())} == root_before

    body = _python_in(
        host.netns,
        """
        import time, urllib.request
        for attempt in range(100):
            try:
                print(urllib.request.urlopen("http://127.0.0.1:8000/", timeout=5)
                      .read().decode().strip())
                break
            except OSError:
                time.sleep(0.1)
    """,
    )
    assert body == "standin-ok"


def test_standin_image_imitates_a_stack(clean_docker_host: DockerHost) -> None:
    host = clean_docker_host
    tag_image(
        host.client, host.image, "shipyard/shipyard:latest", "shipyard/redis:latest"
    )
    assert host.client.images.get("shipyard/redis:latest").id == host.image
    out = host.client.containers.run(
        "shipyard/shipyard:latest",
        ["which", "sh", "sleep", "nc", "httpd", "cat", "ls"],
        remove=True,
    )
    assert out.decode().split() == [
        f"/bin/{a}" for a in ("sh", "sleep", "nc", "httpd", "cat", "ls")
    ]


def test_clean_docker_host_undoes_a_failed_test(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    require_infra: Callable[..., None],
) -> None:
    """An inner session: a test dirties the host and fails, the next one finds it
    clean, and at the end the session daemon leaves nothing behind."""
    require_infra(*DOCKERD_TOOLS)
    record = pytester.path / "record.json"
    monkeypatch.setenv("SDT_RECORD", str(record))
    _setup_testbed(pytester)
    pytester.makepyfile(
        test_inner=f"""
        import json, os
        from pathlib import Path
        import infra

        def test_a_dirties_and_fails(clean_docker_host):
            h = clean_docker_host
            infra.tag_image(h.client, h.image, "shipyard/shipyard:latest")
            h.client.containers.run(h.image_tag, ["sleep", "3600"], detach=True,
                                    name="leftover", ports={{"8000/tcp": 8000}})
            h.client.networks.create("sdt-leftover-net")
            h.client.volumes.create("sdt-leftover-vol")
            Path(os.environ["SDT_RECORD"]).write_text(json.dumps({{
                "root": str(h.dockerd.root), "pid": h.dockerd.pid,
                "netns": h.netns.name,
            }}))
            raise AssertionError("deliberate failure midway")

        def test_b_starts_clean(clean_docker_host):
            c = clean_docker_host.client
            assert c.containers.list(all=True) == []
            tags = {{t for i in c.images.list() for t in i.tags}}
            assert tags == {{{STANDIN_IMAGE!r}}}
            assert "sdt-leftover-net" not in {{n.name for n in c.networks.list()}}
            assert "sdt-leftover-vol" not in {{v.name for v in c.volumes.list()}}
    """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(failed=1, passed=1)
    seen = json.loads(record.read_text())
    assert _gone(seen["pid"])
    assert not Path(seen["root"]).exists()
    assert seen["netns"] not in list_netns()
    assert _processes_mentioning(seen["root"]) == []
    assert _mounts_mentioning(seen["root"]) == []


def test_two_dockerds_at_once(netns: Netns, require_infra: Callable[..., None]) -> None:
    """Two daemons in one namespace (one also on TCP) and a third in another."""
    require_infra(*DOCKERD_TOOLS)
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(
            Dockerd.start(netns, extra_hosts=["tcp://127.0.0.1:4243"])
        )
        second = stack.enter_context(Dockerd.start(netns))
        other_ns = Netns.create()
        stack.callback(other_ns.delete)
        third = stack.enter_context(Dockerd.start(other_ns))
        daemons = [first, second, third]

        assert len({d.pid for d in daemons}) == 3
        assert all(d.ping() for d in daemons)
        assert _in_netns(first.pid, netns) and _in_netns(second.pid, netns)
        assert _in_netns(third.pid, other_ns)
        assert second.bridge is not None and second.config["bridge"] == second.bridge[0]
        for d in daemons:  # each has its own containerd under its own root
            assert any(
                f"{d.root}/x/containerd" in p and "containerd --config" in p
                for p in _processes_mentioning(str(d.root))
            )

        names = []
        for d in daemons:
            client = d.client()
            infra.build_busybox_image(client)
            name = f"sdt-{secrets.token_hex(3)}"
            client.containers.run(
                STANDIN_IMAGE,
                ["sleep", "3600"],
                detach=True,
                name=name,
                ports={"8000/tcp": None},
            )
            names.append(name)
        for d, name in zip(daemons, names, strict=True):
            assert [c.name for c in d.client().containers.list()] == [name]

        ping = _python_in(
            netns,
            """
            import urllib.request
            print(urllib.request.urlopen("http://127.0.0.1:4243/_ping", timeout=10)
                  .read().decode())
        """,
        )
        assert ping == "OK"
        roots = [d.root for d in daemons]

    for d, root in zip(daemons, roots, strict=True):
        assert _gone(d.pid)
        assert not root.exists()
        assert _processes_mentioning(str(root)) == []
        assert _mounts_mentioning(str(root)) == []
    assert other_ns.name not in list_netns()
    assert second.bridge[0] not in netns.run(["ip", "-o", "link"]).stdout


# --------------------------------------------------------------------------
# The InfraMissing policy and the marker
# --------------------------------------------------------------------------


def test_missing_infra_skips_locally_fails_in_ci_and_is_marked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup_testbed(pytester)
    conftest = pytester.path / "conftest.py"
    conftest.write_text(
        conftest.read_text()
        + textwrap.dedent("""

        @infra_fixture()
        def unobtainium():
            with infra_setup():
                raise InfraMissing("unobtainium not found: apt-get install unobtainium")
            yield
    """)
    )
    pytester.makepyfile(
        test_inner="""
        def test_needs_it(unobtainium):
            pass

        def test_fast():
            pass
    """
    )
    monkeypatch.delenv("CI", raising=False)
    local = pytester.runpytest_subprocess("-rs", "-p", "no:cacheprovider")
    local.assert_outcomes(passed=1, skipped=1)
    local.stdout.fnmatch_lines(["*apt-get install unobtainium*"])

    monkeypatch.setenv("CI", "true")
    ci = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    # pytest.fail during fixture setup is reported as an error: the run fails.
    assert ci.ret == pytest.ExitCode.TESTS_FAILED
    ci.assert_outcomes(passed=1, errors=1)
    ci.stdout.fnmatch_lines(["*CI=true*apt-get install unobtainium*"])

    fast = pytester.runpytest_subprocess("-m", "not infra", "-p", "no:cacheprovider")
    fast.assert_outcomes(passed=1, deselected=1)


# --------------------------------------------------------------------------
# The unprivileged venv
# --------------------------------------------------------------------------


def test_unprivileged_venv_runs_as_nobody(unprivileged_venv: Path) -> None:
    python = unprivileged_venv / "bin" / "python"
    assert os.path.realpath(python).startswith("/usr/bin/")
    r = run_as_nobody(
        [
            str(python),
            "-c",
            "import os, docker, psutil, rich, netifaces, importlib.metadata as m; "
            "print(os.getuid(), os.getgid(), os.getgroups()); "
            "print(m.version('shipyard-doctor'))",
        ]
    )
    assert r.returncode == 0, r.stderr
    ids, version = r.stdout.splitlines()
    assert ids == "65534 65534 []"
    # The venv holds this checkout's project, not some other installed copy.
    assert version == shipyard_doctor.__version__
