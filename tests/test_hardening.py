"""Bad input where it enters (flags, environment, the config file) is one line and
exit 2, never an internal error; configured files are read within bounds; piped
output is ASCII whatever the locale; Ctrl-C is exit 130 without a traceback."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import types
import weakref
from collections.abc import Iterator
from pathlib import Path

import infra
import pytest
from doctor_cli import python_lines, run_doctor
from shipyard_doctor.cli import main
from shipyard_doctor.context import Environment
from shipyard_doctor.errors import must_wait
from shipyard_doctor.host import files

LONG = "x" * 10_000
REPO = Path(__file__).resolve().parents[1]
OUR_FRAME = re.compile(
    rf'File "({re.escape(str(REPO))}/(doctor|checks|fixes)/|[^"]*/shipyard_doctor/)'
)


def run_cli(argv: list[str], environ: dict[str, str] | None = None):
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, environ=environ or {})
    with contextlib.redirect_stderr(err):  # argparse's own errors go to sys.stderr
        code = main(argv, env)
    return code, out.getvalue(), err.getvalue()


def assert_usage_error(code: int, out: str, err: str, names: str) -> None:
    """Exit 2, nothing on stdout, one short line on stderr naming *names*."""
    assert code == 2, (code, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 or lines[0].startswith("usage:"), err
    assert names in lines[-1], err
    assert len(lines[-1]) < 400, f"{len(lines[-1])} characters: {lines[-1][:200]}"
    assert "Traceback" not in err and "internal error" not in err


# --- the config file ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[stack]\nports = 5\n", "'stack.ports' must be a table"),
        ("[docker]\ntcp = '127.0.0.1:99999'\n", "'docker.tcp' must be HOST:PORT"),
        ("[docker]\ntcp = '127.0.0.1:0'\n", "'docker.tcp'"),
        ("[docker]\ntcp = '::1:4243'\n", "'docker.tcp'"),
        ("[checks]\ntimeout = nan\n", "'checks.timeout' must be a number of seconds"),
        ("[checks]\ntimeout = inf\n", "'checks.timeout'"),
        ("[checks]\ntimeout = 1e308\n", "'checks.timeout'"),
        ("[checks]\ntimeout = -0.0\n", "'checks.timeout'"),
        ("[docker]\ntimeout = nan\n", "'docker.timeout'"),
        ("[docker]\ntimeout = true\n", "'docker.timeout'"),
        ("[docker]\nhost = 'tcp://127.0.0.1:99999'\n", "'docker.host'"),
        ("[docker]\nhost = 'tcp://127.0.0.1:notaport'\n", "'docker.host'"),
        ("[docker]\nhost = 'tcp://[::1'\n", "'docker.host'"),
        ("[docker]\nhost = 'unix://'\n", "'docker.host'"),
        ('[docker]\ndaemon_json = "/a\\u0000b"\n', "'docker.daemon_json'"),
        ('[agent]\nbinary = "/bin/\\u0000"\n', "'agent.binary'"),
        ('[host]\nlib_dirs = ["/lib\\u0000"]\n', "'host.lib_dirs'"),
        ("[stack.ports]\nshipyard = 0\n", "'stack.ports.shipyard' must be a port"),
        ("[stack.ports]\nshipyard = 65536\n", "'stack.ports.shipyard'"),
        ("[stack.ports]\nshipyard = 80.5\n", "'stack.ports.shipyard'"),
        ("[checks]\nskip = ['']\n", "[checks] skip"),
        ("[checks]\nignore = [',,']\n", "[checks] ignore"),
        ("x = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
        ("[docker]\n" + LONG + " = 1\n", "unknown key 'docker.xxxxxxxx"),
        (f"[{LONG}]\n", "unknown section [xxxx"),
        (f"[stack]\nname = '{LONG}'\n", "unknown stack 'xxxx"),
    ],
)
def test_bad_config_values_are_one_line_exit_2(tmp_path, text, names):
    path = tmp_path / "config.toml"
    path.write_text(text)
    assert_usage_error(*run_cli(["check", "--config", str(path)]), names)


def test_non_utf8_and_oversized_config_files(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[docker]\nhost = 'unix:///caf\xe9.sock'\n")
    assert_usage_error(*run_cli(["check", "--config", str(path)]), "cannot read")
    big = tmp_path / "big.toml"
    big.write_text("# padding\n" * 200_000)  # 2 MB of comments
    assert_usage_error(*run_cli(["check", "--config", str(big)]), "larger than")


def test_config_that_is_not_a_file(tmp_path):
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    for given, names in (
        (str(tmp_path), "is a directory"),
        (str(fifo), "is not a regular file"),  # and it did not block on open
        ("/dev/null", "is not a regular file"),
        (str(tmp_path / "missing.toml"), "does not exist (given by --config)"),
        ("", "--config is empty"),
        (f"/tmp/{LONG}", "file name too long"),
    ):
        assert_usage_error(*run_cli(["check", "--config", given]), names)
    environ = {"SHIPYARD_DOCTOR_CONFIG": str(tmp_path)}
    code, out, err = run_cli(["check"], environ)
    assert_usage_error(code, out, err, "(given by $SHIPYARD_DOCTOR_CONFIG) is a dir")


# --- flags and the environment ---------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--timeout", "nan"], "--timeout"),
        (["--timeout", "inf"], "--timeout"),
        (["--timeout", "1e308"], "--timeout"),
        (["--timeout", "0"], "--timeout"),
        (["--timeout", ""], "--timeout"),
        (["--docker-host", "tcp://127.0.0.1:99999"], "--docker-host"),
        (["--docker-host", "tcp://127.0.0.1:notaport"], "--docker-host"),
        (["--docker-host", "tcp://[::1"], "--docker-host"),
        (["--docker-host", "tcp://:2375"], "--docker-host"),
        (["--docker-host", "tcp://host:"], "--docker-host"),
        (["--docker-host", "ssh://host"], "--docker-host"),
        (["--docker-host", ""], "--docker-host"),
        (["--docker-host", "unix:///a\x00b"], "--docker-host"),
        (["--docker-host", "tcp://" + LONG], "--docker-host"),
        (["--only", ""], "--only '' names no check id"),
        (["--only", ",,,"], "--only ',,,' names no check id"),
        (["--skip", " , "], "--skip"),
        (["--ignore", ""], "--ignore"),
        (["--only", LONG], "unknown check id 'xxxx"),
        (["--stack", LONG], "unknown stack 'xxxx"),
        (["--stack", ""], "unknown stack ''"),
        (["--probe-dhcp", ""], "--probe-dhcp '' is not an interface name"),
        (["--probe-dhcp", "a/b"], "--probe-dhcp 'a/b'"),
        (["--probe-dhcp", LONG], "--probe-dhcp 'xxxx"),
    ],
)
def test_bad_flags_are_one_line_exit_2(argv, names):
    assert_usage_error(*run_cli(["check", *argv]), names)


def test_bad_fix_id_is_cut_short(tmp_path):
    assert_usage_error(*run_cli(["fix", LONG]), "unknown fix id 'xxxx")
    config = tmp_path / "config.toml"
    config.write_text(f'[fix]\njournal_dir = "{tmp_path}/journal"\n')
    code, out, err = run_cli(["undo", LONG, "--config", str(config)])
    assert code == 2 and out == "", err
    assert err.startswith("shipyard-doctor: error: unknown fix run 'xxxx"), err
    assert "x" * 100 not in err and len(err) < 300, err


def test_bad_docker_host_in_the_environment_names_it():
    code, out, err = run_cli(
        ["check", "--only", "ports"], {"DOCKER_HOST": "tcp://[::1"}
    )
    assert_usage_error(code, out, err, "DOCKER_HOST 'tcp://[::1'")
    # --docker-host wins over a bad DOCKER_HOST, as it does over a good one.
    code, out, err = run_cli(
        ["check", "--only", "docker-daemon", "--docker-host", "unix:///nonexistent"],
        {"DOCKER_HOST": "tcp://[::1"},
    )
    assert code == 1 and err == "", err


@pytest.mark.parametrize(
    "url",
    [
        "unix:///nonexistent/docker.sock",
        "tcp://127.0.0.1:9",
        "tcp://[::1]:9",
        "http://localhost:9",
    ],
)
def test_good_docker_hosts_still_run(url):
    code, out, err = run_cli(
        ["check", "--only", "docker-daemon", "--timeout", "5", "--docker-host", url]
    )
    assert code == 1 and err == "", err  # nothing answers there: a failed check
    assert "docker-daemon" in out


# --- bounded reads -----------------------------------------------------------------


def test_bounded_reads_of_endless_and_blocking_files(tmp_path):
    started = time.monotonic()
    with pytest.raises(files.TooLarge, match="larger than 1 MiB"):
        files.read_bytes("/dev/zero")
    data, cut = files.read_tail("/dev/zero", 4096)
    assert data == b"\0" * 4096 and cut is False
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        files.read_text(fifo)  # refused at once, not blocked waiting for a writer
    with pytest.raises(IsADirectoryError):
        files.read_text(tmp_path)
    assert time.monotonic() - started < 5
    log = tmp_path / "big.log"
    with open(log, "wb") as f:
        f.truncate(3 * 1024 * 1024 * 1024)  # sparse 3 GiB
        f.seek(-11, os.SEEK_END)
        f.write(b"\nlast line\n")
    data, cut = files.read_tail(log, 64 * 1024)
    assert cut is True and len(data) == 64 * 1024 and data.endswith(b"last line\n")
    head = files.read_head(log, 4096)
    assert head == b"\0" * 4096  # the start of the 3 GiB file, and only that
    small = tmp_path / "small"
    small.write_bytes(b"x" * 100)
    assert files.read_bytes(small, limit=100) == b"x" * 100
    with pytest.raises(files.TooLarge):
        files.read_bytes(small, limit=99)


def test_check_with_endless_configured_files_is_bounded(tmp_path):
    # /dev/zero for every file the doctor reads by configuration, a FIFO as the
    # docker unit: the whole check finishes quickly, none of it an internal error.
    units = tmp_path / "system"
    units.mkdir()
    os.mkfifo(units / "docker.service")
    config = tmp_path / "config.toml"
    config.write_text(
        '[docker]\ndaemon_json = "/dev/zero"\nlog_file = "/dev/zero"\n'
        f'[host]\nsystemd_dirs = ["{units}"]\nld_so_cache = "/dev/zero"\n'
        f'ld_so_conf = "/dev/zero"\n[fix]\njournal_dir = "{tmp_path}/journal"\n'
    )
    run = run_doctor(
        "check",
        "--json",
        "--docker-host",
        f"unix://{tmp_path}/none.sock",
        config=config,
        timeout=60,
    )
    assert run.code == 1, run.stderr
    assert run.elapsed < 20, run.elapsed
    statuses = {c["id"]: c["status"] for c in run.doc["checks"]}
    errors = {i: run.check(i)["summary"] for i, s in statuses.items() if s == "error"}
    assert not errors, errors
    assert run.check("docker-daemon")["status"] == "failure"


# --- output encoding --------------------------------------------------------------


@pytest.mark.parametrize(
    "env", [{"PYTHONIOENCODING": "ascii"}, {"LANG": "C.UTF-8"}, {"LC_ALL": "C"}]
)
def test_piped_output_is_ascii_whatever_the_locale(tmp_path, env):
    # A failing docker-daemon: its hint and the closing line hold typographic dashes.
    run = run_doctor(
        "check",
        "--only",
        "docker-daemon",
        "--docker-host",
        f"unix://{tmp_path}/none.sock",
        env=env,
    )
    assert run.code == 1, run.stderr
    assert run.stdout.isascii() and run.stderr.isascii()
    assert run.stdout.rstrip().endswith("1 failure -- problems found"), run.stdout
    assert "?" not in run.stdout.splitlines()[-1]


# --- Ctrl-C ------------------------------------------------------------------------


def signalled_runs(
    argv: list[str], signum: int
) -> Iterator[tuple[float, int, str, str]]:
    """Run *argv* 40 times, each sent *signum* later: every 5 ms of the first 150
    (Python starting, the imports), then every 100 ms up to ~1 s (the checks).
    Yields the delay, the exit code, stdout and stderr of each run."""
    for step in range(40):
        delay = step * 0.005 if step < 30 else 0.15 + (step - 30) * 0.1
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(delay)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
        yield delay, proc.returncode, out, err


def interrupted_by_us(delay: float, returncode: int, out: str, err: str) -> int:
    """1 after asserting that shipyard-doctor ended itself: 130, one line, no
    output half-written (none, or the whole document when the signal came as it
    was exiting)."""
    assert returncode == 130, (delay, returncode, err)
    assert err == "shipyard-doctor: interrupted\n", (delay, err)
    assert out == "" or json.loads(out)["schema"] == 1, out
    return 1


def test_ctrl_c_at_any_moment_is_130_without_a_traceback(tmp_path):
    """SIGINT from 0 to ~1 s after start: while Python itself starts (killed by
    the signal, or its own startup traceback, which no shipyard_doctor code can
    catch), while our modules import, and while the checks run."""
    argv = [sys.executable, "-m", "shipyard_doctor", "check", "--json"]
    argv += ["--docker-host", f"unix://{tmp_path}/none.sock"]
    ours = 0
    for delay, returncode, out, err in signalled_runs(argv, signal.SIGINT):
        if returncode in (0, 1):
            continue  # it finished first (a fast machine): nothing to see
        if "Traceback" in err:
            # Python's own startup (site, runpy, the editable-install finder) was
            # interrupted, before any line of shipyard_doctor ran: that traceback
            # names none of its files.
            assert not OUR_FRAME.search(err), err
            continue
        if returncode == -signal.SIGINT:  # a shell shows 130 too
            # Before Python set its handler: no output; else our one line.
            assert err in ("", "shipyard-doctor: interrupted\n"), err
            continue
        ours += interrupted_by_us(delay, returncode, out, err)
    assert ours >= 10, "too few interrupts landed in shipyard-doctor's own code"


# -X importtime: Python writes a line to stderr as each import ends, unbuffered, so
# the output shows whether shipyard_doctor had been imported (and its own handler
# set) when the signal came. A check thread's import may end in the middle of the
# main thread's line: not anchored.
IMPORT_TIME = re.compile(r"import time: [^\n]*\n")
PACKAGE_IMPORTED = re.compile(r"import time: [^\n]*\| shipyard_doctor\n")


def test_sigterm_at_any_moment_is_130_without_a_traceback(tmp_path):
    """SIGTERM (kill PID, a service manager) from 0 to ~1 s after start: before
    Python runs any of shipyard_doctor the signal's default ends it (no output);
    from the package's first line on, while the modules import (a SIGTERM inside
    the import machinery comes again 10 ms later), while the checks run and while
    the interpreter exits: 130 and one line, or it had finished first."""
    argv = [sys.executable, "-X", "importtime", "-m", "shipyard_doctor", "check"]
    argv += ["--json", "--docker-host", f"unix://{tmp_path}/none.sock"]
    ours = 0
    for delay, returncode, out, err in signalled_runs(argv, signal.SIGTERM):
        said = IMPORT_TIME.sub("", err)
        assert "Traceback" not in said, (delay, said)
        if returncode == -signal.SIGTERM:
            assert said == "", (delay, said)
            assert not PACKAGE_IMPORTED.search(err), (delay, "killed by the signal")
            continue
        assert PACKAGE_IMPORTED.search(err), (delay, err)
        if returncode in (0, 1):  # it finished first: the whole document
            assert json.loads(out)["schema"] == 1, (delay, out)
            continue
        ours += interrupted_by_us(delay, returncode, out, said)
    assert ours >= 10, "too few SIGTERMs landed in shipyard-doctor's own code"


GUARD_PROBE = """
import signal, sys, time
from shipyard_doctor.errors import interrupt

class Finder:  # a real meta path finder: importlib's own frame calls it
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "sd_no_such_module":
            importing = sys._getframe(1)
            print(importing.f_code.co_filename.startswith("<frozen importlib"))
            interrupt(signal.SIGTERM, importing)  # must not raise in there
            print("deferred")
        return None

signal.signal(signal.SIGTERM, interrupt)
sys.meta_path.insert(0, Finder)
try:
    import sd_no_such_module
except ModuleNotFoundError:
    print("import ended normally")
try:
    time.sleep(5)
    print("the signal was lost")
except KeyboardInterrupt:
    print("interrupted after the import")
"""


def test_a_signal_inside_the_import_machinery_comes_again_after_it():
    assert python_lines(GUARD_PROBE) == [
        "True",
        "deferred",
        "import ended normally",
        "interrupted after the import",
    ]


DEL_PROBE = """
import signal, time
from shipyard_doctor.errors import interrupt

class Dropped:
    def __del__(self):
        signal.raise_signal(signal.SIGTERM)  # the handler runs in this frame
        print("__del__ ended normally")

signal.signal(signal.SIGTERM, interrupt)
try:
    Dropped()
    time.sleep(5)
    print("the signal was lost")
except KeyboardInterrupt:
    print("interrupted after __del__")
"""


def test_a_signal_inside_a_finalizer_comes_again_after_it():
    # Raised in __del__ (or a weak reference's callback), Python would print
    # "Exception ignored in" with a traceback and lose the signal.
    assert python_lines(DEL_PROBE) == [
        "__del__ ended normally",
        "interrupted after __del__",
    ]


def test_a_weak_set_callback_is_a_frame_to_wait_in():
    # A check thread that ends leaves threading's WeakSet through _remove: the frame
    # a SIGTERM landed in, in CI, and lost its way.
    seen: list[types.FrameType] = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_name == "_remove":
            seen.append(frame)

    class Member:
        pass

    members = weakref.WeakSet()
    member = Member()
    members.add(member)
    sys.setprofile(profile)
    try:
        del member
    finally:
        sys.setprofile(None)
    assert seen and seen[0].f_code.co_filename.endswith("_weakrefset.py")
    assert must_wait(seen[0])
    assert not must_wait(sys._getframe())  # an ordinary frame: raise at once


def test_console_script_handles_ctrl_c_too():
    script = Path(sys.executable).with_name("shipyard-doctor")
    assert script.exists(), f"{script}: pip install -e . again"
    # A hung Docker socket keeps the run going for seconds: the signal lands in it.
    with infra.HangingUnixServer() as hung:
        proc = subprocess.Popen(
            [str(script), "check", "--docker-host", hung.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == "shipyard-doctor: interrupted\n", err
    assert out == ""


def test_importing_the_package_leaves_ctrl_c_alone():
    # Only the program (python -m shipyard_doctor, the console script) ends itself
    # on an early Ctrl-C; pytest (`python -m pytest`: argv[0] is its __main__.py)
    # or any other importer keeps KeyboardInterrupt, so its cleanup still runs.
    import shipyard_doctor

    assert signal.getsignal(signal.SIGINT) is not (
        shipyard_doctor._interrupted_while_starting
    )
    code = (
        "import sys; sys.argv = ['/usr/lib/python3/dist-packages/pytest/__main__.py']\n"
        "import signal, shipyard_doctor\n"
        "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n"
        "print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["True", "True"]
