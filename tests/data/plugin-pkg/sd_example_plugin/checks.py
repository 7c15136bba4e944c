"""A third-party check: knows nothing of shipyard-doctor's internals but the API."""

from shipyard_doctor.model import Check, Result


class HostnameSet(Check):
    """hostname-set: the host has a real hostname (Shipyard v1 registers hosts by it)."""

    id = "hostname-set"
    title = "Hostname is set"
    category = "third-party"
    requires = ("ports",)

    def run(self, host):
        name = host.summary()["hostname"]
        if name in ("", "localhost", "(none)"):
            return Result.warning(f"hostname is {name!r}")
        return Result.ok(f"hostname is {name}", details=["from the example plugin"])
