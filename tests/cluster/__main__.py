"""`python -m tests.cluster up|down|status`: the local control plane."""

from __future__ import annotations

import sys

from tests.cluster.local import LocalCluster


def main(argv: list[str]) -> int:
    cluster = LocalCluster()
    command = argv[0] if argv else "status"
    if command == "up":
        cluster.up()
        print(f"export KUBECONFIG={cluster.kubeconfig}")
    elif command == "down":
        cluster.down()
    elif command == "status":
        running = cluster.is_running()
        print(f"{cluster.name}: {'running' if running else 'stopped'} ({cluster.kubeconfig})")
        return 0 if running else 1
    else:
        print("usage: python -m tests.cluster up|down|status", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
