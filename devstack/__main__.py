"""`python -m devstack up`: the whole local stack (`make up`).
`python -m devstack cluster up|down|status`: the control plane alone."""

from __future__ import annotations

import sys

from devstack import up
from devstack.cluster import LocalCluster

USAGE = "usage: python -m devstack up | cluster up|down|status"


def cluster(command: str) -> int:
    local = LocalCluster()
    if command == "up":
        local.up()
        print(f"export KUBECONFIG={local.kubeconfig}")
    elif command == "down":
        local.down()
    elif command == "status":
        running = local.is_running()
        print(f"{local.name}: {'running' if running else 'stopped'} ({local.kubeconfig})")
        return 0 if running else 1
    else:
        print(USAGE, file=sys.stderr)
        return 2
    return 0


def main(argv: list[str]) -> int:
    if argv == ["up"]:
        return up.main()
    if len(argv) == 2 and argv[0] == "cluster":
        return cluster(argv[1])
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
