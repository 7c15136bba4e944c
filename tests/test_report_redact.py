"""The redactor, the pseudonymizer and the Markdown limit on plain data (fast: no
infrastructure). The end-to-end proof is tests/test_report.py."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from shipyard_doctor.report.collect import Section, SectionStatus
from shipyard_doctor.report.document import Privacy, build
from shipyard_doctor.report.markdown import LIMIT, render_markdown
from shipyard_doctor.report.pseudonyms import Pseudonymizer
from shipyard_doctor.report.redact import Redactor

SECRET = "Tr0ub4dor&3-horse"


def scrubbed(*texts: str, data: object = None) -> tuple[Redactor, list[str]]:
    redactor = Redactor(("shipyard", "redis"))
    for text in texts:
        redactor.learn(text)
    if data is not None:
        redactor.learn(data)
    return redactor, [redactor.scrub(t) for t in texts]


def test_a_value_found_once_is_replaced_everywhere_in_its_usual_encodings():
    basic = base64.b64encode(f"admin:{SECRET}".encode()).decode()
    _, out = scrubbed(
        f"ADMIN_PASS={SECRET}",
        f"log: the admin password is {SECRET}",
        f"GET /login?pw={quote(SECRET, safe='')} 200",
        f"header value {basic}",
        json.dumps({"note": f"said {SECRET}"}),
    )
    assert out[0] == "ADMIN_PASS=[REDACTED:env]"
    assert out[1] == "log: the admin password is [REDACTED:env]"
    assert out[2] == "GET /login?pw=[REDACTED:env] 200"
    assert SECRET not in "".join(out) and basic.rstrip("=") not in "".join(out)


def test_gaps_other_tools_had_are_closed():
    # sos's docker regex misses mixed case, *_TOKEN and URL passwords; sos#3266 cut a
    # password with spaces at its first word.
    env = [
        "DbPassword=mixed-Case-1",
        "GITHUB_TOKEN=ghp_abcdef123456",
        "MAIL_PASS=50 Leagues Under",
    ]
    redactor, out = scrubbed(
        "DATABASE_URL=postgres://u:dsn-secret-9@db/x",
        "mail: 50 Leagues Under",
        data={"Env": env},
    )
    assert out == [
        "DATABASE_URL=postgres://u:[REDACTED:url-password]@db/x",
        "mail: [REDACTED:env]",
    ]
    clean = redactor.scrub_data({"Env": env})
    assert clean == {"Env": [f"{e.split('=')[0]}=[REDACTED:env]" for e in env]}


def test_headers_keys_and_registry_auths():
    auth = base64.b64encode(b"ciuser:reg-pass-42").decode()
    config = json.dumps({"auths": {"r.example": {"auth": auth}}})
    armour = "-----{} RSA PRIVATE KEY-----"
    body = "MIIEowIBAAKCAQEAx1234567890abcdef"
    pem = f"{armour.format('BEGIN')}\n{body}\n{armour.format('END')}"
    _, out = scrubbed(
        "Authorization: ApiKey admin:0123456789abcdef",
        "X-Access-Token: admin:tok-987654321",
        config,
        pem,
        "push with reg-pass-42",
    )
    assert out[0] == "Authorization: ApiKey [REDACTED:header]"
    assert out[1] == "X-Access-Token: [REDACTED:header]"
    assert json.loads(out[2]) == {
        "auths": {"r.example": {"auth": "[REDACTED:registry-auth]"}}
    }
    assert (
        out[3]
        == f"{armour.format('BEGIN')}[REDACTED:private-key]{armour.format('END')}"
    )
    assert out[4] == "push with [REDACTED:registry-auth]"


def test_what_is_not_a_secret_stays():
    _, out = scrubbed(
        "--tlskey=/etc/docker/key.pem",
        "PWD=/root KEY_COUNT=",
        'Environment="DOCKER_OPTS=-H fd://"',
        "ADMIN_PASS=shipyard",  # the stack's public default: masked nowhere else
        "Plugins Authorization: null",
        "org.opencontainers.image.authors=ehazlett",
    )
    assert out == [
        "--tlskey=/etc/docker/key.pem",
        "PWD=/root KEY_COUNT=",
        'Environment="DOCKER_OPTS=-H fd://"',
        "ADMIN_PASS=shipyard",
        "Plugins Authorization: null",
        "org.opencontainers.image.authors=ehazlett",
    ]


def test_a_part_that_cannot_be_redacted_is_left_out_and_marked():
    deep: list = []
    cursor = deep
    for _ in range(5000):  # deeper than the redactor can walk
        cursor.append([])
        cursor = cursor[0]
    cursor.append(f"API_TOKEN={SECRET}")
    sections = [
        Section("deep", "Deep", SectionStatus.OK, "deep", data={"x": deep}),
        Section("fine", "Fine", SectionStatus.OK, "fine", text=f"token={SECRET}"),
    ]
    doc, _, _ = build({}, {}, [], sections, Privacy(redact=True, pseudonymize=False))
    deep_out, fine_out = doc.sections
    assert deep_out.status is SectionStatus.WITHHELD
    assert deep_out.summary.startswith("left out: it could not be redacted")
    assert deep_out.data == {} and deep_out.text == ""
    assert fine_out.text == "token=[REDACTED:env]"


def test_pseudonyms_are_consistent_and_keep_what_identifies_nobody():
    p = Pseudonymizer(hostnames=["build-07"], users=["alice"])
    first = p.apply("build-07 10.0.2.15 gw 10.0.2.2 mac 08:00:27:aa:bb:cc alice")
    second = p.apply("alice@build-07 reached 10.0.2.15 from 08:00:27:AA:BB:CC")
    assert first == "host1 100.64.0.15 gw 100.64.0.2 mac 02:00:5e:00:00:01 user1"
    assert second == "user1@host1 reached 100.64.0.15 from 02:00:5e:00:00:01"
    kept = "127.0.0.1 0.0.0.0 255.255.255.0 198.51.100.7 ::1 2001:db8::5 localhost"
    assert p.apply(kept) == kept
    assert p.mapping()["ipv4"] == {"10.0.2.15": "100.64.0.15", "10.0.2.2": "100.64.0.2"}


def test_markdown_fits_githubs_limit_and_says_what_it_trimmed():
    log = "\n".join(
        f"2026-12-01T10:00:{i % 60:02d}Z line {i} " + "x" * 80 for i in range(3000)
    )
    sections = [
        Section(
            "containers", "The stack's containers", SectionStatus.OK, "1", text=log
        ),
        Section("system", "OS", SectionStatus.OK, "Debian", text="kernel 6.1"),
    ]
    checks = [{"id": "ports", "status": "ok", "summary": "free | really"}]
    doc, _, _ = build(
        {}, {}, checks, sections, Privacy(redact=True, pseudonymize=False)
    )
    text = render_markdown(doc)
    assert len(text) <= LIMIT
    assert "> **Trimmed** to fit GitHub's 65,536-character limit: containers (" in text
    assert "characters trimmed here to fit GitHub's limit" in text
    assert "kernel 6.1" in text  # small sections are kept whole
    assert "| `ports` | ✓ ok | free \\| really |" in text


def test_collectors_conform():
    """Every collector: a unique id the schema accepts, a title, a row in README."""
    import re
    from pathlib import Path

    from shipyard_doctor.report.collectors import COLLECTORS

    ids = [c.id for c in COLLECTORS]
    assert len(ids) == len(set(ids))
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for collector in COLLECTORS:
        assert re.fullmatch(r"[a-z][a-z0-9-]*", collector.id)
        assert collector.title and callable(collector.collect)
        assert f"\n| {collector.id} | " in readme, f"{collector.id} not in README"
