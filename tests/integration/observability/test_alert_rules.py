"""The chart's alerts, rendered by Helm and run by Prometheus's own rule
tester (promtool) on made-up series: each fires when it should and stays
quiet when all is well."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.cluster import ROOT, binary

API = 'job="tc-train-conductor-api", namespace="ml"'
CONTROLLER = 'job="tc-train-conductor-controller", namespace="ml"'
# redis_exporter beside the bundled Redis.
REDIS = 'job="tc-train-conductor-redis", namespace="ml", instance="10.0.0.7:9121"'
GIB = 1024**3
REDIS_ERRORS = "trainconductor_redis_errors_total"
OLDEST_WAIT = "trainconductor_queue_oldest_waiting_seconds"
FAILED_ATTEMPTS = "trainconductor_controller_failed_attempts_total"


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rendered = subprocess.run(
        [
            binary("helm"), "template", "tc", str(ROOT / "helm" / "train-conductor"),
            "--namespace", "ml",
            "-f", str(ROOT / "helm" / "train-conductor" / "ci" / "full-values.yaml"),
            "--set", "queues.enabled=true",
            "--api-versions", "monitoring.coreos.com/v1/PrometheusRule",
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rules = next(
        doc["spec"]
        for doc in yaml.safe_load_all(rendered.stdout)
        if doc and doc.get("kind") == "PrometheusRule"
    )
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    return path


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        raise RuntimeError("promtool is missing: `make deps` installs Debian's prometheus")
    return subprocess.run([tool, *args], capture_output=True, text=True, check=False)


def test_the_rules_are_valid(rules_file: Path) -> None:
    result = promtool("check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr


def run_case(rules_file: Path, series: list[dict[str, str]], minutes: int,
             alert: str, fires: bool) -> None:  # fmt: skip
    # Expect no alert: when one fires, promtool fails and prints it, which
    # tells both outcomes apart with the alert's own labels in view.
    expected: list[dict[str, Any]] = []
    test = {
        "rule_files": [str(rules_file)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": f"{minutes}m", "alertname": alert, "exp_alerts": expected}
                ],
            }
        ],
    }
    path = rules_file.parent / f"{alert}-{fires}.yaml"
    path.write_text(yaml.safe_dump(test))
    result = promtool("test", "rules", str(path))
    output = result.stdout + result.stderr
    if fires:
        # promtool reports what fired when the expectation (none) is not met.
        assert result.returncode != 0, f"{alert} did not fire:\n{output}"
        assert f"alertname: {alert}" in output or f'alertname="{alert}"' in output, output
    else:
        assert result.returncode == 0, f"{alert} fired when all was well:\n{output}"


@pytest.mark.parametrize(
    ("alert", "series", "minutes", "fires"),
    [
        pytest.param("TrainConductorAPIDown", [{"series": f"up{{{API}}}", "values": "0x15"}],
                     10, True, id="API down for ten minutes alerts"),
        pytest.param("TrainConductorAPIDown", [{"series": f"up{{{API}}}", "values": "1x15"}],
                     10, False, id="API up stays quiet"),
        pytest.param("TrainConductorControllerNoLeader",
                     [{"series": f"trainconductor_controller_leader{{{CONTROLLER}, pod=\"a\"}}",
                       "values": "0x30"}],
                     20, True, id="no controller leading alerts"),
        pytest.param("TrainConductorControllerNoLeader",
                     [{"series": f"trainconductor_controller_leader{{{CONTROLLER}, pod=\"a\"}}",
                       "values": "1x30"},
                      {"series": f"trainconductor_controller_leader{{{CONTROLLER}, pod=\"b\"}}",
                       "values": "0x30"}],
                     20, False, id="one leader among replicas stays quiet"),
        pytest.param("TrainConductorGrpcErrors",
                     [{"series": f'grpc_server_handled_total{{{API}, grpc_code="OK"}}',
                       "values": "0+100x30"},
                      {"series": f'grpc_server_handled_total{{{API}, grpc_code="Unavailable"}}',
                       "values": "0+20x30"}],
                     25, True, id="a sixth of calls failing alerts"),
        pytest.param("TrainConductorGrpcErrors",
                     [{"series": f'grpc_server_handled_total{{{API}, grpc_code="OK"}}',
                       "values": "0+100x30"},
                      {"series": f'grpc_server_handled_total{{{API}, grpc_code="NotFound"}}',
                       "values": "0+20x30"}],
                     25, False, id="client errors such as NotFound stay quiet"),
        pytest.param("TrainConductorRedisErrors",
                     [{"series": f'{REDIS_ERRORS}{{{CONTROLLER}, operation="read_changes"}}',
                       "values": "0+25x30"}],
                     20, True, id="a controller that keeps failing to reach Redis alerts"),
        pytest.param("TrainConductorRedisErrors",
                     [{"series": f'{REDIS_ERRORS}{{{API}, operation="get"}}',
                       "values": "0x10 3x20"}],
                     14, False, id="one Redis blip stays quiet while its rate shows it"),
        pytest.param("TrainConductorTrainingsStuckPending",
                     [{"series": f"trainconductor_trainings_oldest_pending_seconds{{{CONTROLLER}}}",
                       "values": "0+60x40"}],
                     30, True, id="a training PENDING for half an hour alerts"),
        pytest.param("TrainConductorTrainingsStuckPending",
                     [{"series": f"trainconductor_trainings_oldest_pending_seconds{{{CONTROLLER}}}",
                       "values": "0 2 0 1 3 0x36"}],
                     30, False, id="trainings that leave PENDING within seconds stay quiet"),
        pytest.param("TrainConductorWorkQueueBacklog",
                     [{"series": f"trainconductor_controller_workqueue_depth{{{CONTROLLER}}}",
                       "values": "500x40"}],
                     30, True, id="a work queue that stays deep alerts"),
        pytest.param("TrainConductorRedisMemoryHigh",
                     [{"series": f"redis_memory_used_bytes{{{REDIS}}}",
                       "values": f"{GIB // 2}+{GIB // 100}x40"},
                      {"series": f"redis_memory_max_bytes{{{REDIS}}}", "values": f"{GIB}x40"}],
                     40, True, id="Redis filling past 80 percent of its maxmemory alerts"),
        pytest.param("TrainConductorRedisMemoryHigh",
                     [{"series": f"redis_memory_used_bytes{{{REDIS}}}", "values": f"{GIB // 2}x40"},
                      {"series": f"redis_memory_max_bytes{{{REDIS}}}", "values": f"{GIB}x40"}],
                     40, False, id="Redis at half its maxmemory stays quiet"),
        pytest.param("TrainConductorRedisMemoryHigh",
                     [{"series": f"redis_memory_used_bytes{{{REDIS}}}", "values": f"{GIB}x40"},
                      {"series": f"redis_memory_max_bytes{{{REDIS}}}", "values": "0x40"}],
                     40, False, id="a Redis without maxmemory has no share to alert on"),
        pytest.param("TrainConductorRedisFull",
                     [{"series": f'trainconductor_redis_full{{{API}, pod="a"}}',
                       "values": "0x5 1x10"}],
                     12, True, id="an API that finds Redis out of memory alerts"),
        pytest.param("TrainConductorRedisFull",
                     [{"series": f'trainconductor_redis_full{{{API}, pod="a"}}', "values": "0x15"}],
                     12, False, id="a Redis with room stays quiet"),
        pytest.param("TrainConductorTrainingsStalled",
                     [{"series": f'trainconductor_trainings_stalled{{{CONTROLLER}, pod="a"}}',
                       "values": "0x5 1x20"},
                      {"series": f'trainconductor_trainings_stalled{{{CONTROLLER}, pod="b"}}',
                       "values": "0x25"}],
                     20, True, id="a training stalled on the leader for ten minutes alerts"),
        pytest.param("TrainConductorTrainingsStalled",
                     [{"series": f'trainconductor_trainings_stalled{{{CONTROLLER}, pod="a"}}',
                       "values": "0x5 1x5 0x15"}],
                     20, False, id="a stall that ends within minutes stays quiet"),
        pytest.param("TrainConductorAttemptsFailing",
                     [{"series": f'{FAILED_ATTEMPTS}{{{CONTROLLER}, pod="a", '
                                 'cause="disruption", outcome="restarted"}',
                       "values": "0+1x40"}],
                     40, True, id="nodes taking a gang's pod every minute alert"),
        pytest.param("TrainConductorAttemptsFailing",
                     [{"series": f'{FAILED_ATTEMPTS}{{{CONTROLLER}, pod="a", '
                                 'cause="user_error", outcome="failed"}',
                       "values": "0+1x40"},
                      {"series": f'{FAILED_ATTEMPTS}{{{CONTROLLER}, pod="a", '
                                 'cause="retryable", outcome="restarted"}',
                       "values": "0x10 1x30"}],
                     40, False, id="users' own errors and one crash stay quiet"),
        pytest.param("TrainConductorQueueWaitTooLong",
                     [{"series": f'{OLDEST_WAIT}{{{CONTROLLER}, pod="a", queue="team-a"}}',
                       "values": "0+60x90"},
                      {"series": f'{OLDEST_WAIT}{{{CONTROLLER}, pod="a", queue="team-b"}}',
                       "values": "0+60x5 0x85"}],
                     80, True, id="a queue whose oldest training waits over an hour alerts"),
        pytest.param("TrainConductorQueueWaitTooLong",
                     [{"series": f'{OLDEST_WAIT}{{{CONTROLLER}, pod="a", queue="team-a"}}',
                       "values": "0+60x30 0+60x30 0+60x30"}],
                     85, False, id="a queue emptied every half hour stays quiet"),
        pytest.param("TrainConductorQueueWaitTooLong",
                     [{"series": f'{OLDEST_WAIT}{{{CONTROLLER}, pod="b", queue="team-a"}}',
                       "values": "0x90"}],
                     80, False, id="a queue where nobody waits stays quiet"),
    ],
)  # fmt: skip
def test_alert(
    rules_file: Path, alert: str, series: list[dict[str, str]], minutes: int, fires: bool
) -> None:
    run_case(rules_file, series, minutes, alert, fires)
