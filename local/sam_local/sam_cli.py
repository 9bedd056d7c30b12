"""SAM CLI's own command line, with ``--docker-network host`` doing what it says.

    python -m local.sam_local.sam_cli local invoke ... --docker-network host

SAM CLI accepts ``--docker-network host`` but, since 1.5x, creates the container on Docker's default network anyway
and publishes the emulator's port (aws/aws-sam-cli#4236; the fix proposed in aws/aws-sam-cli#7278 was not merged).
Here the default network does not exist (the engine runs with ``--bridge=none`` and ``--iptables=false``) and the local
stack listens on 127.0.0.1 only, so the function could not reach it. This entry point runs SAM CLI unchanged except for
that one thing: a container asked for network ``host`` is created in Docker's host network mode, and the runtime
interface emulator inside it listens on 127.0.0.1 at the port SAM CLI picked for it (plus a free port for the Runtime
API instead of its fixed 9001), since no port is published in host mode. Every other option goes to SAM CLI as it is.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

RIE = "/var/rapid/aws-lambda-rie"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def install_host_network() -> None:
    from docker.models.containers import ContainerCollection
    from samcli.local.docker.container import Container

    original_create = Container.create
    original_docker_create = ContainerCollection.create

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.network_id == "host":
            self._container_opts = {**(self._container_opts or {}), "network_mode": "host"}
            entrypoint = list(self._entrypoint or [])
            if entrypoint[:1] == [RIE] and "--runtime-interface-emulator-address" not in entrypoint:
                self._entrypoint = [
                    *entrypoint,
                    "--runtime-interface-emulator-address", f"127.0.0.1:{self.rapid_port_host}",
                    "--runtime-api-address", f"127.0.0.1:{_free_port()}",
                ]
        return original_create(self, *args, **kwargs)

    def docker_create(self: Any, image: Any, command: Any = None, **kwargs: Any) -> Any:
        if kwargs.get("network_mode") == "host":
            kwargs.pop("ports", None)  # as `docker run --network host -p ...` does: published ports are discarded
        return original_docker_create(self, image, command, **kwargs)

    for cls, name in ((Container, "create"), (ContainerCollection, "create")):
        if not callable(getattr(cls, name, None)):
            raise SystemExit(f"sam_cli: SAM CLI or docker-py changed ({cls.__name__}.{name} is gone); "
                             "local/sam_local/sam_cli.py needs an update")
    Container.create = create
    ContainerCollection.create = docker_create


def main() -> int:
    install_host_network()
    from samcli.cli.main import cli

    sys.argv[0] = "sam"
    result = cli()
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
