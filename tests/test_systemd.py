"""systemd unit resolution on recorded real units (tests/data/systemd/, each file's
header says where it comes from), laid out as systemd dirs with drop-ins; the live
units of this machine; and the drop-in the doctor proposes, checked by systemd's own
``systemd-analyze verify``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conftest import infra_setup
from doctor_cli import as_if_systemd_runs_docker
from infra import InfraMissing, missing
from shipyard_doctor.config import Config, DockerConfig, HostConfig
from shipyard_doctor.host import daemonconf, tcproutes
from shipyard_doctor.host.daemonconf import parse_dockerd_argv, parse_listen_stream
from shipyard_doctor.host.gateway import Host
from shipyard_doctor.host.systemd import (
    command_argv,
    exec_property_argvs,
    load_unit,
    parse_systemctl_show,
    sockets_for,
)

DATA = Path(__file__).parent / "data" / "systemd"


def dirs(layout: str) -> list[str]:
    root = DATA / layout
    return [
        str(root / "etc/systemd/system"),
        str(root / "run/systemd/system"),
        str(root / "lib/systemd/system"),
        str(root / "usr/lib/systemd/system"),
    ]


def test_debian_unit_with_drop_ins_resets_exec_start():
    unit = load_unit("docker.service", dirs("debian"))
    assert unit.fragment == DATA / "debian/lib/systemd/system/docker.service"
    assert [p.name for p in unit.dropins] == ["10-tcp.conf", "20-proxy.conf"]
    # The empty ExecStart= of 10-tcp.conf drops the vendor command; the backslash
    # continuation joins the two lines of the new one.
    (command,) = unit.values("Service", "ExecStart")
    assert command == (
        "/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock "
        "$DOCKER_OPTS -H tcp://127.0.0.1:4243"
    )
    argv, unset = command_argv(command, {})
    assert unset == ("DOCKER_OPTS",)
    assert parse_dockerd_argv(argv).hosts == ("fd://", "tcp://127.0.0.1:4243")
    assert unit.values("Service", "Environment") == (
        '"HTTP_PROXY=http://proxy.example:3128"',
    )
    assert unit.value("Unit", "Requires") == "docker.socket"


def test_debian_vendor_unit_alone():
    unit = load_unit("docker.service", dirs("debian")[2:])
    assert unit.dropins == ()
    (command,) = unit.values("Service", "ExecStart")
    argv, _ = command_argv(command, {"DOCKER_OPTS": "-H tcp://127.0.0.1:4243 -D"})
    # $DOCKER_OPTS alone is split into words (what Shipyard's 2014 installer relied on)
    assert argv[-3:] == ("-H", "tcp://127.0.0.1:4243", "-D")
    (socket,) = sockets_for("docker.service", dirs("debian"))
    assert socket.values("Socket", "ListenStream") == ("/run/docker.sock",)


def test_upstream_moby_units():
    unit = load_unit("docker.service", dirs("moby"))
    argv, unset = command_argv(unit.values("Service", "ExecStart")[-1], {})
    assert argv == (
        "/usr/bin/dockerd",
        "-H",
        "fd://",
        "--containerd=/run/containerd/containerd.sock",
    )
    assert unset == ()
    flags = parse_dockerd_argv(argv)
    assert flags.hosts == ("fd://",) and flags.tlsverify is None
    (socket,) = sockets_for("docker.service", dirs("moby"))
    assert socket.name == "docker.socket" and not socket.enabled_in


def test_coreos_unit_and_docker_tcp_socket():
    unit = load_unit("docker.service", dirs("coreos"))
    argv, unset = command_argv(unit.values("Service", "ExecStart")[-1], {})
    assert argv[0] == "/usr/lib/coreos/dockerd"
    assert parse_dockerd_argv(argv).hosts == ("fd://",)  # --host=fd://
    assert "DOCKER_OPTS" in unset and "DOCKER_OPT_BIP" in unset
    sockets = {s.name: s for s in sockets_for("docker.service", dirs("coreos"))}
    assert set(sockets) == {"docker.socket", "docker-tcp.socket"}
    tcp = sockets["docker-tcp.socket"]
    assert tcp.values("Socket", "ListenStream") == ("4243",)
    assert parse_listen_stream("4243") == ("", 4243)  # every address
    assert tcp.enabled_in  # sockets.target.wants/docker-tcp.socket
    assert parse_listen_stream("127.0.0.1:4243") == ("127.0.0.1", 4243)
    assert parse_listen_stream("/var/run/docker.sock") == ("/var/run/docker.sock", None)


def test_a_full_copy_in_etc_hides_the_vendor_unit_and_masking(tmp_path):
    etc, lib = tmp_path / "etc", tmp_path / "lib"
    lib.mkdir()
    shutil.copytree(DATA / "coreos/usr/lib/systemd/system", lib, dirs_exist_ok=True)
    etc.mkdir()
    # The story's edit: copy the read-only unit and add the TCP host to ExecStart.
    text = (lib / "docker.service").read_text()
    (etc / "docker.service").write_text(
        text.replace("--host=fd://", "-H tcp://127.0.0.1:4243 --host=fd://")
    )
    # A drop-in of the same name in a lower dir is hidden by the higher one.
    for d, value in ((etc, "-D"), (lib, "--debug-lower")):
        (d / "docker.service.d").mkdir()
        (d / "docker.service.d/opts.conf").write_text(
            f"[Service]\nEnvironment=DOCKER_OPTS={value}\n"
        )
    unit = load_unit("docker.service", [str(etc), str(lib)])
    assert unit.fragment == etc / "docker.service"
    assert unit.shadowed == (lib / "docker.service",)
    assert unit.dropins == (etc / "docker.service.d/opts.conf",)
    assert unit.values("Service", "Environment") == ("DOCKER_OPTS=-D",)
    argv, _ = command_argv(unit.values("Service", "ExecStart")[-1], {})
    assert parse_dockerd_argv(argv).hosts == ("tcp://127.0.0.1:4243", "fd://")
    (etc / "docker.service").unlink()
    (etc / "docker.service").symlink_to(os.devnull)
    masked = load_unit("docker.service", [str(etc), str(lib)])
    assert masked.masked and not masked.exists and masked.settings == {}


def test_systemctl_show_exec_start_recorded():
    # Real `systemctl show docker` output (CentOS 7, 2017-02-24) from a public kolla
    # deployment note, found with the search tool's find_string (file id
    # 18228108151); shortened to the properties parsed here.
    text = (
        "ExecStart={ path=/usr/bin/dockerd ; argv[]=/usr/bin/dockerd ; "
        "ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; "
        "code=(null) ; status=0/0 }\n"
        "Id=docker.service\nFragmentPath=/usr/lib/systemd/system/docker.service\n"
        "NeedDaemonReload=no\n"
    )
    props = parse_systemctl_show(text)
    assert props["FragmentPath"] == "/usr/lib/systemd/system/docker.service"
    assert exec_property_argvs(props["ExecStart"]) == [("/usr/bin/dockerd",)]
    # A pager-cut line from a public how-to (same search, file id 10232028454).
    cut = (
        "{ path=/usr/bin/dockerd ; argv[]=/usr/bin/dockerd -g /rtk/docker -H fd:// "
        "-H=tcp://0.0.0.0:2375 --containerd=/run/containerd/containerd.sock ; "
        "ignore_errors=no ; start_time=[Thu 2023-05-11 08:41:04 UTC] ; "
        "stop_time=[n/a] ; pid=155108 ; code=(null) ; status=0/>"
    )
    (argv,) = exec_property_argvs(cut)
    assert parse_dockerd_argv(argv).hosts == ("fd://", "tcp://0.0.0.0:2375")


def test_live_units_of_this_machine():
    live = Path("/lib/systemd/system/docker.service")
    if not live.exists():
        missing("/lib/systemd/system/docker.service: apt-get install docker.io")
    unit = load_unit("docker.service", ["/lib/systemd/system"])
    recorded = load_unit("docker.service", dirs("debian")[2:])
    assert unit.values("Service", "ExecStart") == recorded.values(
        "Service", "ExecStart"
    )


def _debian_host(tmp_path: Path) -> Host:
    vendor = tmp_path / "lib"
    shutil.copytree(DATA / "debian/lib/systemd/system", vendor)
    etc = tmp_path / "etc"
    etc.mkdir()
    config = Config(
        docker=DockerConfig(daemon_json=str(tmp_path / "daemon.json")),
        host=HostConfig(
            systemd_dirs=(str(etc), str(vendor)), run_dir=str(etc), init_dir=str(etc)
        ),
    )
    return as_if_systemd_runs_docker(Host(config))


def test_proposed_drop_in_passes_systemd_analyze_verify(tmp_path, require_infra):
    # verify checks that ExecStart's binary exists, hence dockerd (docker.io).
    require_infra("dockerd")
    with infra_setup():
        if shutil.which("systemd-analyze") is None:
            raise InfraMissing("systemd-analyze not found: apt-get install systemd")
    host = _debian_host(tmp_path)
    unit = daemonconf.unit_setup(host)
    routes = tcproutes.tcp_routes(host, None, unit)
    assert [r.kind for r in routes] == ["drop-in", "socket", "daemon.json"]
    dropin, socket, dotjson = routes
    assert dropin.fits and socket.fits and not dotjson.fits
    assert dropin.content == (
        "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H fd:// "
        "--containerd=/run/containerd/containerd.sock $DOCKER_OPTS "
        "-H tcp://127.0.0.1:4243\n"
    )
    units = tmp_path / "verify"
    shutil.copytree(tmp_path / "lib", units)
    (units / "docker.service.d").mkdir()
    conf = units / "docker.service.d" / "shipyard-tcp.conf"
    (units / "docker-tcp.socket").write_text(socket.content)

    def verify(*names: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["systemd-analyze", "verify", *names],
            env={**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:"},
            capture_output=True,
            text=True,
            cwd=units,
        )

    conf.write_text(dropin.content)
    done = verify("docker.service", "docker-tcp.socket")
    assert done.returncode == 0, done.stderr
    # Without the resetting ExecStart= systemd refuses the unit: the check above
    # would have caught a route that forgot it.
    conf.write_text(dropin.content.replace("ExecStart=\n", ""))
    bad = verify("docker.service")
    assert bad.returncode != 0 and "more than one ExecStart=" in bad.stderr
    # The proposed drop-in, read back, gives dockerd the TCP host.
    conf.write_text(dropin.content)
    again = load_unit("docker.service", [str(units)])
    argv, _ = command_argv(again.values("Service", "ExecStart")[-1], {})
    assert parse_dockerd_argv(argv).hosts == ("fd://", "tcp://127.0.0.1:4243")
