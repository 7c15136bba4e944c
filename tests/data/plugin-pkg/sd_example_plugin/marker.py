"""A third-party check and its fix: the file named by $SD_EXAMPLE_MARKER says "good"."""

from shipyard_doctor.fixing import Fix, Plan, RunCommand, WriteFile
from shipyard_doctor.model import Check, Result


class MarkerCheck(Check):
    """example-marker: a file the example plugin cares about says "good"."""

    id = "example-marker"
    title = "Example marker file"
    category = "third-party"

    def run(self, host):
        path = host.environ["SD_EXAMPLE_MARKER"]
        try:
            with open(path) as handle:
                text = handle.read()
        except FileNotFoundError:
            return Result.failure(f"{path} is missing", data={"path": path})
        if text == "good\n":
            return Result.ok(f"{path} says good")
        return Result.failure(f"{path} says {text.strip()!r}", data={"path": path})


class MarkerFix(Fix):
    id = "example-marker"
    title = "Write the example marker"
    repairs = ("example-marker",)

    def plan(self, result, host, options):
        path = result.data["path"]
        steps = [WriteFile(path, "good\n")]
        # Like a fix whose change needs a restart: [docker] restart_command, if set,
        # runs after the write (the tests point it at a script that takes its time).
        restart = host.config.docker.restart_command
        if restart:
            steps.append(RunCommand(("sh", "-c", restart), "make the marker count"))
        return Plan(
            self.id,
            "example-marker",
            f"write 'good' into {path}",
            steps=tuple(steps),
        )
