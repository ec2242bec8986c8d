"""observe(): the reason and message a user reads, from a Job and its pods."""

from __future__ import annotations

from tests.unit.controller.factories import (
    NAME,
    failed_pod,
    image_pull_pod,
    job,
    pod,
    unschedulable_pod,
)
from trainconductor_controller.objects import Refusal
from trainconductor_controller.observe import observe, parse_time_ms
from trainconductor_core.phases import Phase


def test_unschedulable_carries_the_schedulers_message() -> None:
    seen = observe(job(), [unschedulable_pod()])
    assert (seen.phase, seen.reason) == (Phase.QUEUED, "Unschedulable")
    assert "Insufficient nvidia.com/gpu" in seen.message


def test_an_image_that_will_not_pull_is_named() -> None:
    seen = observe(job(), [image_pull_pod()])
    assert (seen.phase, seen.reason) == (Phase.QUEUED, "ErrImagePull")


def test_a_failure_names_the_exit_code_and_termination_message() -> None:
    seen = observe(
        job(("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")),
        [failed_pod(137, "OOMKilled", "CUDA out of memory")],
    )
    assert seen.phase == Phase.FAILED
    assert seen.reason == "BackoffLimitExceeded"
    assert "exited with code 137 (OOMKilled): CUDA out of memory" in seen.message
    assert seen.finish_time_ms is not None


def test_running_records_the_start_and_attempts() -> None:
    seen = observe(job(active=1), [pod("Running")])
    assert seen.phase == Phase.RUNNING
    assert seen.attempts == 1
    assert seen.start_time_ms is not None


def test_a_job_without_pods_yet_is_queued() -> None:
    assert observe(job(), []).reason == "JobCreated"


def test_a_trainer_that_exited_stays_running_until_the_jobs_verdict() -> None:
    seen = observe(job(active=0), [pod("Succeeded")])
    assert (seen.phase, seen.reason) == (Phase.RUNNING, "Finishing")


def test_a_pod_kubernetes_stopped_is_told_as_such_not_as_the_trainers_exit() -> None:
    evicted = failed_pod(137, "Error")
    evicted["status"]["conditions"] = [
        {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting",
        }
    ]
    seen = observe(job(("Failed", "BackoffLimitExceeded", "backoff limit")), [evicted])
    assert seen.phase == Phase.FAILED
    assert seen.message == (
        "backoff limit; Kubernetes stopped its pod (EvictionByEvictionAPI: Eviction API: evicting)"
    )
    assert "137" not in seen.message


def test_a_container_that_can_not_be_created_says_why() -> None:
    stuck = pod(
        "Pending",
        containerStatuses=[
            {
                "state": {
                    "waiting": {
                        "reason": "CreateContainerConfigError",
                        "message": 'secret "hf-token" not found',
                    }
                }
            }
        ],
    )
    stuck["spec"] = {"nodeName": "kwok-gpu-0"}
    seen = observe(job(), [stuck])
    assert (seen.phase, seen.reason) == (Phase.QUEUED, "CreateContainerConfigError")
    assert seen.message == 'secret "hf-token" not found'


def _refusal(message: str, at: str) -> Refusal:
    return {"metadata": {"name": f"{NAME}.{at}"}, "message": message, "lastTimestamp": at}


def test_a_pod_the_job_controller_could_not_create_says_why() -> None:
    """A ResourceQuota or an admission policy refused the pod: the Job's
    status says nothing, the FailedCreate event does; the newest one speaks."""
    seen = observe(
        job(),
        [],
        [
            _refusal("Error creating: pods is forbidden: old news", "2027-01-15T08:00:00Z"),
            _refusal("Error creating: exceeded quota: gpus", "2027-01-15T08:01:00Z"),
        ],
    )
    assert (seen.phase, seen.reason) == (Phase.QUEUED, "PodRefused")
    assert seen.message == (
        "Kubernetes refused its pod; the Job retries: Error creating: exceeded quota: gpus"
    )


def test_a_refusal_that_ended_gives_way_to_the_pod() -> None:
    refusals = [_refusal("Error creating: exceeded quota: gpus", "2027-01-15T08:00:00Z")]
    assert observe(job(), [unschedulable_pod()], refusals).reason == "Unschedulable"
    assert observe(job(active=1), [pod("Running")], refusals).phase == Phase.RUNNING


def test_the_start_is_the_trainers_first_not_the_jobs_nor_a_sidecars() -> None:
    """The Job's startTime is when the Job controller took it up, before
    any wait for a node; a sidecar injected into the pod may start first."""
    first = failed_pod(1, "Error")
    first["status"]["containerStatuses"] = [
        {"name": "istio-proxy", "state": {"running": {"startedAt": "2027-01-15T08:05:00Z"}}},
        {
            "name": "trainer",
            "state": {"terminated": {"exitCode": 1, "startedAt": "2027-01-15T08:10:00Z"}},
        },
    ]
    retry = pod("Running", started="2027-01-15T08:20:00Z")
    seen = observe(job(active=1, failed=1), [retry, first])
    assert seen.start_time_ms == parse_time_ms("2027-01-15T08:10:00Z")
    assert observe(job(), [unschedulable_pod()]).start_time_ms is None


def test_a_trainer_that_could_not_start_has_not_started() -> None:
    """Kubernetes reports a container that failed to start (StartError, a
    bad command) as started at the epoch."""
    never = failed_pod(128, "StartError", "exec: no such file")
    never["status"]["containerStatuses"][0]["name"] = "trainer"
    never["status"]["containerStatuses"][0]["state"]["terminated"]["startedAt"] = (
        "1970-01-01T00:00:00Z"
    )
    assert observe(job(failed=1), [never]).start_time_ms is None


def test_a_replacement_pod_refused_after_the_first_ended_is_told() -> None:
    """The first pod was evicted (or failed with retries left) and the pod
    replacing it is refused: the training waits again, and says why."""
    evicted = failed_pod(137, "Error")  # created 08:00:00
    refusal = _refusal("Error creating: exceeded quota: gpus", "2027-01-15T08:07:00Z")
    seen = observe(job(active=0, failed=1), [evicted], [refusal])
    assert (seen.phase, seen.reason) == (Phase.QUEUED, "PodRefused")
    # A refusal from before that pod came is history.
    old = _refusal("Error creating: exceeded quota: gpus", "2027-01-15T07:59:00Z")
    assert observe(job(active=0, failed=1), [evicted], [old]).reason == "Finishing"


def test_a_job_kubernetes_is_ending_is_not_queued_while_its_pods_stop() -> None:
    """At a deadline Kubernetes marks the Job FailureTarget, deletes its pods,
    and only then marks it Failed: in between it is finishing."""
    ending = job(("FailureTarget", "DeadlineExceeded", "Job was active longer than specified"))
    seen = observe(ending, [pod("Running")])
    assert (seen.phase, seen.reason) == (Phase.RUNNING, "Finishing")
    assert "DeadlineExceeded" in seen.message
    gone = observe(ending, [], ran=True)  # its pods deleted already
    assert (gone.phase, gone.reason) == (Phase.RUNNING, "Finishing")


def test_a_job_asked_to_suspend_is_suspended_before_its_condition_says_so() -> None:
    suspending = job(active=1)
    suspending["spec"] = {"suspend": True}
    assert observe(suspending, []).phase == Phase.SUSPENDED
