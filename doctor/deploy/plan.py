"""What a deploy will do, decided before anything is touched.

The plan compares the stack (data) with what the daemon holds: containers of the
stack found by name (a legacy deployment has no labels) or by label, the network,
the volumes and the images present. Each service is then kept (ours, running, same
image), created (missing) or replaced (stopped, legacy, or another image).
"""

from __future__ import annotations

import re
import secrets as random
import socket
from enum import StrEnum

from shipyard_doctor.config import Config
from shipyard_doctor.deploy import labels
from shipyard_doctor.deploy.daemon import Daemon, Found
from shipyard_doctor.deploy.options import DeployOptions
from shipyard_doctor.deploy.secrets import StackSecrets
from shipyard_doctor.records import field, record
from shipyard_doctor.stacks import Probe, Service, Stack

_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


class Action(StrEnum):
    DEPLOY = "deploy"  # nothing of the stack exists
    NOTHING = "nothing"  # deployed and running: nothing to do
    REPAIR = "repair"  # some of it exists: replace what is broken, add what is missing
    LEGACY = "legacy"  # deployed and running, by another tool (no labels)


@record
class ContainerSpec:
    """A container a deploy creates: a stack service, ready for the Docker API."""

    service: str
    name: str
    image: str  # what runs: after --image-map / [stack.images]
    stack_image: str  # what the stack names
    env: tuple[tuple[str, str], ...] = field(repr=False)
    command: tuple[str, ...] | None
    entrypoint: tuple[str, ...] | None
    ports: tuple[tuple[int, str, int | None], ...]  # container port, proto, host
    expose: tuple[int, ...]
    binds: tuple[tuple[str, str, bool], ...]  # host path or volume, target, ro
    aliases: tuple[str, ...]
    restart: str
    tty: bool
    probe: Probe
    labels: tuple[tuple[str, str], ...]

    @property
    def env_keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.env)


@record
class DeployPlan:
    """What a deploy will do: the containers to create, keep and replace, the network,
    volumes and pulls, decided before anything is touched."""

    stack: Stack
    deploy_id: str
    action: Action
    network: str
    network_exists: bool
    volumes: tuple[str, ...]  # named volumes the stack uses
    new_volumes: tuple[str, ...]  # ... of which these will be created
    create: tuple[ContainerSpec, ...]  # in dependency order
    keep: tuple[Found, ...]
    replace: tuple[Found, ...]  # removed before their service is created again
    pulls: tuple[str, ...]
    mapped: tuple[tuple[str, str], ...]  # stack image -> image used
    ui_url: str
    login_user: str
    secrets: StackSecrets
    warnings: tuple[str, ...] = ()
    # A container left running with another admin password than this deploy's:
    # the password is only set when the container is created.
    password_kept: str = ""

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(s.service for s in self.create)


def wanted_services(stack: Stack, with_agent: bool) -> tuple[Service, ...]:
    names = frozenset(s.name for s in stack.services if not s.optional or with_agent)
    return stack.deploy_order(names)


def stack_containers(stack: Stack, found: list[Found]) -> dict[str, Found]:
    """The stack's containers by service: labelled ours, or legacy (no labels,
    named as the stack's container, from the stack's image or its mapped image)."""
    by_service: dict[str, Found] = {}
    for service in stack.services:
        for c in found:
            if c.name != service.container:
                continue
            owner = c.labels.get(labels.STACK)
            if owner == stack.name or (owner is None and _same_repo(c, service)):
                by_service[service.name] = c
    return by_service


def _same_repo(c: Found, service: Service) -> bool:
    # A legacy container lists the image it was created from; a user's own
    # container that happens to be called "shipyard" is not the stack's.
    repo = labels.normalize(service.image).rsplit(":", 1)[0]
    return labels.normalize(c.image).rsplit(":", 1)[0].endswith(repo)


def make_plan(
    stack: Stack,
    config: Config,
    options: DeployOptions,
    daemon: Daemon,
    stack_secrets: StackSecrets,
) -> DeployPlan:
    services = wanted_services(stack, options.with_agent)
    existing = stack_containers(stack, daemon.containers())
    moved = {
        (p.service, p.container_port): p.port
        for p in stack.host_ports(config.stack.ports)
    }
    ui_port = next(
        (
            p
            for (s, cp), p in moved.items()
            if s == stack.ui_service and cp == stack.ui_container_port
        ),
        stack.ui_container_port,
    )
    host_ip = _host_ip(daemon)
    values = {
        "db_password": stack_secrets.db_password,
        "admin_password": stack_secrets.admin_password,
        "docker_socket": daemon.socket_path,
        "host_ip": host_ip,
        "ui_url": f"http://{host_ip}:{ui_port}",
    }
    deploy_id = random.token_hex(6)
    specs = {
        s.name: _spec(s, stack, config, options, values, moved, deploy_id)
        for s in services
    }
    create: list[ContainerSpec] = []
    keep: list[Found] = []
    replace: list[Found] = []
    for service in services:
        spec = specs[service.name]
        found = existing.get(service.name)
        if found is None:
            create.append(spec)
        elif (
            found.labels.get(labels.STACK) == stack.name
            and found.state == "running"
            and labels.normalize(found.image) == spec.image
        ):
            keep.append(found)
        else:
            replace.append(found)
            create.append(spec)
    if keep:  # a repair joins the deployment it completes
        deploy_id = keep[0].labels.get(labels.DEPLOY_ID, deploy_id)
        create = [_relabel(s, deploy_id) for s in create]
    network_exists = daemon.network(stack.network) is not None
    volumes = tuple(
        dict.fromkeys(
            b[0] for s in specs.values() for b in s.binds if not b[0].startswith("/")
        )
    )
    new_volumes = tuple(v for v in volumes if not daemon.volume_exists(v))
    images = tuple(dict.fromkeys(s.image for s in create))
    pulls = tuple(i for i in images if options.pull or not daemon.has_image(i))
    legacy = [c for c in existing.values() if labels.STACK not in c.labels]
    if not create and network_exists:
        action = Action.NOTHING
    elif (
        legacy
        and len(legacy) == len(services)
        and all(c.state == "running" for c in legacy)
        and not (set(s.name for s in services) - set(existing))
    ):
        action = Action.LEGACY
    elif keep or replace:
        action = Action.REPAIR
    else:
        action = Action.DEPLOY
    mapped = tuple(
        (labels.normalize(s.image), specs[s.name].image)
        for s in services
        if labels.normalize(s.image) != specs[s.name].image
    )
    running = [*keep, *(legacy if action is Action.LEGACY else ())]
    password_kept = _password_kept(stack, daemon, running, stack_secrets.admin_password)
    warnings = []
    if password_kept:
        warnings.append(
            f"{password_kept} keeps running with the {stack.login.user} password it "
            "was created with, not this one (it is only set when the container is "
            "created): to change it, `shipyard-doctor undeploy` then "
            "`shipyard-doctor deploy --admin-password PASSWORD` (the database "
            "volume is kept)"
        )
    elif stack_secrets.admin_is_default:
        warnings.append(
            f"the {stack.login.user} password is Shipyard's 2014 default, which "
            "everyone knows: "
            + (
                "give another with --admin-password"
                if stack.login.password_env
                else "change it in the UI after the first login"
            )
        )
    return DeployPlan(
        stack=stack,
        deploy_id=deploy_id,
        action=action,
        network=stack.network,
        network_exists=network_exists,
        volumes=volumes,
        new_volumes=new_volumes,
        create=tuple(create),
        keep=tuple(keep),
        replace=tuple(replace),
        pulls=pulls,
        mapped=mapped,
        ui_url=values["ui_url"],
        login_user=stack.login.user,
        secrets=stack_secrets,
        warnings=tuple(warnings),
        password_kept=password_kept,
    )


def _password_kept(
    stack: Stack, daemon: Daemon, running: list[Found], wanted: str
) -> str:
    """The name of the container in ``running`` whose admin password (the
    stack's ``login.password_env``; unset: the image's default) is not
    ``wanted``, else ""."""
    variable, default = stack.login.password_env, stack.login.default_password
    sets_it = {s.container for s in stack.services if variable in dict(s.env)}
    for found in running:
        if (
            variable
            and found.name in sets_it
            and daemon.environment(found.id).get(variable, default) != wanted
        ):
            return found.name
    return ""


def _spec(
    service: Service,
    stack: Stack,
    config: Config,
    options: DeployOptions,
    values: dict[str, str],
    moved: dict[tuple[str, int], int],
    deploy_id: str,
) -> ContainerSpec:
    def fill(text: str) -> str:
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

    env = [(k, fill(v)) for k, v in service.env]
    for link in service.links:
        env.extend(legacy_link_env(stack.service(link.service), link.alias, fill))
    ports = tuple(
        (
            p.container_port,
            p.protocol,
            None
            if p.host_port is None
            else moved.get((service.name, p.container_port), p.host_port),
        )
        for p in service.ports
    )
    image = labels.resolve_image(service.image, options.image_map, config.stack.images)
    return ContainerSpec(
        service=service.name,
        name=service.container,
        image=image,
        stack_image=labels.normalize(service.image),
        env=tuple(env),
        command=None
        if service.command is None
        else tuple(fill(a) for a in service.command),
        entrypoint=None
        if service.entrypoint is None
        else tuple(fill(a) for a in service.entrypoint),
        ports=ports,
        expose=service.expose,
        binds=tuple(
            (fill(v.bind) or v.source, v.target, v.read_only) for v in service.volumes
        ),
        aliases=tuple(
            dict.fromkeys(
                [
                    service.name,
                    *service.aliases,
                    *(
                        lk.alias
                        for s in stack.services
                        for lk in s.links
                        if lk.service == service.name
                    ),
                ]
            )
        ),
        restart=service.restart,
        tty=service.tty,
        probe=service.ready,
        labels=tuple(labels.labels(stack.name, deploy_id, service.name).items()),
    )


def _relabel(spec: ContainerSpec, deploy_id: str) -> ContainerSpec:
    from dataclasses import replace

    new = tuple((k, deploy_id if k == labels.DEPLOY_ID else v) for k, v in spec.labels)
    return replace(spec, labels=new)


def legacy_link_env(target: Service, alias: str, fill: object) -> list[tuple[str, str]]:
    """The variables `--link target:alias` set (Docker's legacy links), with the alias
    -- a name on the stack's network -- as the address, never a bridge IP."""
    prefix = re.sub(r"[^A-Z0-9]", "_", alias.upper())
    env: list[tuple[str, str]] = []
    ports = target.container_ports
    protos = {p.container_port: p.protocol for p in target.ports}
    if ports:
        env.append(
            (f"{prefix}_PORT", f"{protos.get(ports[0], 'tcp')}://{alias}:{ports[0]}")
        )
    for port in ports:
        proto = protos.get(port, "tcp")
        key = f"{prefix}_PORT_{port}_{proto.upper()}"
        env += [
            (key, f"{proto}://{alias}:{port}"),
            (f"{key}_ADDR", alias),
            (f"{key}_PORT", str(port)),
            (f"{key}_PROTO", proto),
        ]
    env.append((f"{prefix}_NAME", f"/{alias}"))
    assert callable(fill)
    env += [(f"{prefix}_ENV_{k}", fill(v)) for k, v in target.env]
    return env


def _host_ip(daemon: Daemon) -> str:
    """The host's address for ${host_ip} (v3's $IP): the daemon's TCP host, else the
    source address of the default route (a UDP connect sends nothing)."""
    if not daemon.endpoint.is_unix and daemon.endpoint.host:
        return daemon.endpoint.host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route is looked up
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"
