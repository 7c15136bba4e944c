"""Stand-in images for the Shipyard stacks, built locally under the real image names.

No registry is reachable, so each image of a stack is imitated by a tiny image that
honours the same contract the deploy relies on: the same entrypoint paths and
commands (v1's /app/.docker/run.sh, v3's /bin/controller, swarm's m/j), listening on
the same ports. Web services are busybox `httpd` serving an index page; redis is the
machine's own /usr/bin/redis-server with the libraries `ldd` lists, so PING answers
a real PONG.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra import STANDIN_IMAGE, InfraMissing, _busybox_rootfs

if TYPE_CHECKING:
    import docker

HTTPD = "exec httpd -f -p {port} -h /var/www"

#: image -> (files: path -> shell script body, Dockerfile lines)
WEB: dict[str, tuple[Mapping[str, str], tuple[str, ...]]] = {
    "shipyard/router:latest": (
        {},
        ('CMD ["httpd", "-f", "-p", "80", "-h", "/var/www"]',),
    ),
    "shipyard/lb:latest": ({}, ('CMD ["httpd", "-f", "-p", "80", "-h", "/var/www"]',)),
    "shipyard/db:latest": (
        {},
        ('CMD ["httpd", "-f", "-p", "5432", "-h", "/var/www"]',),
    ),
    # v1 runs it with --entrypoint /app/.docker/run.sh app master-worker; v3 with the
    # image's own entrypoint (the controller) and --listen :8080.
    "shipyard/shipyard:latest": (
        {
            "app/.docker/run.sh": 'echo "run.sh $*: db at $DB_PORT_5432_TCP_ADDR:'
            '$DB_PORT_5432_TCP_PORT, redis at $REDIS_PORT_6379_TCP_ADDR"\n'
            + HTTPD.format(port=8000),
            "bin/controller": HTTPD.format(port=8080),
        },
        ('ENTRYPOINT ["/bin/controller"]',),
    ),
    # The Feb-2014 agent container: it must reach the UI by its name.
    "shipyard/agent:latest": (
        {
            "agent": 'echo "agent $*"\n'
            'wget -q -O /dev/null http://shipyard:8000/ || { echo "UI unreachable"; '
            "exit 1; }\n" + HTTPD.format(port=4500)
        },
        ('ENTRYPOINT ["/agent"]',),
    ),
    # v2: the data container runs `/bin/bash -l` on a terminal; the server listens.
    "shipyard/rethinkdb:latest": (
        {"bin/bash": 'exec sh "$@"'},
        ('CMD ["httpd", "-f", "-p", "28015", "-h", "/var/www"]',),
    ),
    "rethinkdb:latest": ({}, ('CMD ["httpd", "-f", "-p", "28015", "-h", "/var/www"]',)),
    "microbox/etcd:latest": (
        {"etcd": "httpd -p 7001 -h /var/www\n" + HTTPD.format(port=4001)},
        ('ENTRYPOINT ["/etcd"]',),
    ),
    "alpine:latest": ({}, ('CMD ["sh"]',)),
    "shipyard/docker-proxy:latest": (
        {},
        ('CMD ["httpd", "-f", "-p", "2375", "-h", "/var/www"]',),
    ),
    "swarm:latest": (
        {
            "swarm": 'if [ "$1" = m ]; then ' + HTTPD.format(port=3375) + "; fi\n"
            "exec sleep 100000"
        },
        ('ENTRYPOINT ["/swarm"]',),
    ),
}

V1_IMAGES = (
    "shipyard/redis:latest",
    "shipyard/router:latest",
    "shipyard/lb:latest",
    "shipyard/db:latest",
    "shipyard/shipyard:latest",
)
V2_IMAGES = ("shipyard/rethinkdb:latest", "shipyard/shipyard:latest")
V3_IMAGES = (
    "rethinkdb:latest",
    "microbox/etcd:latest",
    "alpine:latest",
    "shipyard/docker-proxy:latest",
    "swarm:latest",
    "shipyard/shipyard:latest",
)


def _context(files: Mapping[str, str], lines: tuple[str, ...], base: str) -> bytes:
    buf = io.BytesIO()
    dockerfile = [f"FROM {base}", "COPY files/ /", *lines]
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add(name: str, data: bytes, mode: int) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        add("Dockerfile", "\n".join(dockerfile).encode() + b"\n", 0o644)
        add("files/var/www/index.html", b"<h1>stand-in</h1>\n", 0o644)
        for path, body in files.items():
            add(f"files/{path}", f"#!/bin/sh\n{body}\n".encode(), 0o755)
    return buf.getvalue()


def build_web_image(
    client: docker.DockerClient,
    tag: str,
    files: Mapping[str, str],
    lines: tuple[str, ...],
    base: str = STANDIN_IMAGE,
) -> str:
    """A busybox stand-in with scripts and an index page, built by the daemon."""
    image, _ = client.images.build(
        fileobj=io.BytesIO(_context(files, lines, base)),
        custom_context=True,
        tag=tag,
        rm=True,
        forcerm=True,
        pull=False,
    )
    return str(image.id)


def _libraries(binary: Path) -> list[Path]:
    out = subprocess.run(
        ["ldd", str(binary)], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        for part in parts:
            if part.startswith("/"):
                found.append(Path(part))
                break
    return found


def build_redis_image(
    client: docker.DockerClient,
    tag: str = "shipyard/redis:latest",
    redis: Path = Path("/usr/bin/redis-server"),
    busybox: Path = Path("/usr/bin/busybox"),
) -> str:
    """The machine's own redis-server, its libraries and busybox, as an image."""
    if not redis.exists():
        raise InfraMissing(f"{redis} is needed: apt-get install redis-server")
    buf = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(_busybox_rootfs(busybox))) as base,
        tarfile.open(fileobj=buf, mode="w") as tar,
    ):
        for member in base.getmembers():
            tar.addfile(member, base.extractfile(member) if member.isfile() else None)
        dirs: set[str] = set()
        for path in [redis, *_libraries(redis)]:
            parents = list(reversed(path.parents))[1:]
            for parent in parents:
                name = str(parent).lstrip("/")
                if name not in dirs and name not in ("bin", "usr", "usr/bin"):
                    dirs.add(name)
                    info = tarfile.TarInfo(name)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            data = path.resolve().read_bytes()
            info = tarfile.TarInfo(str(path).lstrip("/"))
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    from docker.utils import parse_repository_tag

    repository, image_tag = parse_repository_tag(tag)
    client.api.import_image_from_data(
        buf.getvalue(),
        repository=repository,
        tag=image_tag or "latest",
        changes=[
            "ENV PATH=/bin:/usr/bin",
            'CMD ["/usr/bin/redis-server", "--protected-mode", "no", "--save", ""]',
            "EXPOSE 6379",
        ],
    )
    return str(client.images.get(tag).id)


def build_stack_images(
    client: docker.DockerClient, tags: tuple[str, ...]
) -> dict[str, str]:
    """Build the named stand-ins (redis included) and return tag -> image id."""
    built: dict[str, Any] = {}
    for tag in tags:
        if tag == "shipyard/redis:latest":
            built[tag] = build_redis_image(client, tag)
        else:
            files, lines = WEB[tag]
            built[tag] = build_web_image(client, tag, files, lines)
    return built
