"""build_job(): the Job a training becomes, in what a user of it relies on."""

from __future__ import annotations

from typing import Any

from tests.unit.controller.factories import record
from trainconductor_controller.jobs import (
    build_job,
    build_service,
    deadline_seconds,
    trainer_config,
)
from trainconductor_controller.names import INSTANCE_LABEL, made_by
from trainconductor_controller.settings import ControllerSettings


def test_kubernetes_neither_deletes_the_job_nor_retries_a_pod_itself() -> None:
    spec = build_job(record(), ControllerSettings())["spec"]
    # Deleted by the controller once the verdict is recorded (plan.py).
    assert "ttlSecondsAfterFinished" not in spec
    # Set once the trainer runs (plan.py): Kubernetes would count the wait for a node.
    assert "activeDeadlineSeconds" not in spec
    # Any failed pod, a disruption too, ends the attempt: the controller
    # makes the next one (a new Job), or fails the training.
    assert spec["backoffLimit"] == 0
    assert spec["podFailurePolicy"] == {
        "rules": [
            {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {
                "action": "FailJob",
                "onExitCodes": {"containerName": "trainer", "operator": "NotIn", "values": [0]},
            },
        ]
    }
    assert spec["template"]["spec"]["restartPolicy"] == "Never"  # which the policy needs
    assert "completionMode" not in spec  # one node: one pod, as before
    assert "subdomain" not in spec["template"]["spec"]


def test_a_job_is_labelled_with_the_install_that_made_it() -> None:
    labels = build_job(record(), ControllerSettings(lease_name="ml-a-controller"))["metadata"][
        "labels"
    ]
    assert labels[INSTANCE_LABEL] == "ml-a-controller"
    assert made_by({"metadata": {"labels": labels}}, "ml-a-controller")
    assert not made_by({"metadata": {"labels": labels}}, "ml-b-controller")
    assert made_by({"metadata": {"labels": {}}}, "ml-b-controller")  # made before the label


def test_a_trainings_own_deadline_comes_before_the_default() -> None:
    settings = ControllerSettings(default_deadline_seconds=600)
    assert deadline_seconds(record(), settings) == 600
    own = record()
    own.spec.deadline.seconds = 7200
    assert deadline_seconds(own, settings) == 7200


def test_the_trainer_gets_evaluation_checkpoint_and_lora_bias_arguments() -> None:
    training = record()
    p = training.spec.parameters
    p.validation_data_path = "/mnt/data/eval.jsonl"
    p.save_strategy, p.evaluation_strategy = "best", "epoch"
    p.overwrite_output_dir = False  # sent, so said, though false
    p.lora.bias = "lora_only"
    config = trainer_config(training.spec)
    assert config["validation_data_path"] == "/mnt/data/eval.jsonl"
    assert (config["save_strategy"], config["evaluation_strategy"]) == ("best", "epoch")
    assert config["overwrite_output_dir"] is False
    assert (config["peft_method"], config["bias"], config["r"]) == ("lora", "lora_only", 8)


def test_a_queued_training_is_labelled_for_kueue_and_made_suspended() -> None:
    made = build_job(record(queue="team-a", priority="high"), ControllerSettings())
    labels = made["metadata"]["labels"]
    assert labels["kueue.x-k8s.io/queue-name"] == "team-a"
    assert labels["kueue.x-k8s.io/priority-class"] == "high"
    # No pod starts before Kueue admits it, however slow its webhook.
    assert made["spec"]["suspend"] is True
    # The pods carry no queue label: Kueue queues the Job, not its pods.
    assert "kueue.x-k8s.io/queue-name" not in made["spec"]["template"]["metadata"]["labels"]


def test_a_training_without_a_queue_runs_at_once() -> None:
    made = build_job(record(), ControllerSettings())
    assert "suspend" not in made["spec"]
    assert not any(k.startswith("kueue.x-k8s.io/") for k in made["metadata"]["labels"])


def test_a_training_pod_gets_the_api_address_and_a_token_bound_to_it_for_progress() -> None:
    settings = ControllerSettings(
        progress_address="tc-api.ml.svc:50051", progress_token_audience="tc-progress"
    )
    pod = build_job(record(), settings)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["TC_PROGRESS_ADDRESS"] == "tc-api.ml.svc:50051"
    token_file = env["TC_PROGRESS_TOKEN_FILE"]
    (mount,) = container["volumeMounts"]
    assert token_file == f"{mount['mountPath']}/token"
    assert mount["readOnly"]
    (volume,) = pod["volumes"]
    assert volume["name"] == mount["name"]
    assert volume["projected"]["sources"] == [
        {
            "serviceAccountToken": {
                "audience": "tc-progress",
                "expirationSeconds": 3600,
                "path": "token",
            }
        }
    ]


def test_without_an_api_address_a_pod_gets_nothing_to_report_with() -> None:
    pod = build_job(record(), ControllerSettings())["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert not [e for e in container["env"] if e["name"].startswith("TC_PROGRESS")]
    assert "volumes" not in pod
    assert "volumeMounts" not in container


def _env(job: dict[str, Any]) -> dict[str, Any]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_a_four_node_training_is_an_indexed_job_with_torchruns_environment() -> None:
    four = record()
    four.spec.resources.nodes = 4
    four.spec.resources.gpus = 8
    made = build_job(four, ControllerSettings(master_port=29400), attempt=2)
    name = f"train-{four.id}-a2"
    assert made["metadata"]["name"] == name
    assert made["metadata"]["annotations"]["trainconductor.dev/attempt"] == "2"
    spec = made["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == (
        "Indexed",
        4,
        4,
    )
    assert spec["template"]["spec"]["subdomain"] == name
    env = _env(made)
    rank = {
        "fieldRef": {
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        }
    }
    for prefix in ("", "PET_"):
        assert env[prefix + "MASTER_ADDR"] == f"{name}-0.{name}"  # rank 0's stable name
        assert env[prefix + "MASTER_PORT"] == "29400"
        assert env[prefix + "NNODES"] == "4"
        assert env[prefix + "NPROC_PER_NODE"] == "8"
        assert env[prefix + "NODE_RANK"] == rank
    assert env["WORLD_SIZE"] == "32"  # every process of every node, as torchrun counts


def test_the_headless_service_is_the_jobs_and_goes_with_it() -> None:
    two = record()
    two.spec.resources.nodes = 2
    service = build_service(two, ControllerSettings(), f"train-{two.id}", "uid-1")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {"batch.kubernetes.io/job-name": f"train-{two.id}"}
    owner = service["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Job", f"train-{two.id}", "uid-1")


def test_with_kubeflows_protocol_on_a_pod_gets_its_variables_naming_the_training() -> None:
    settings = ControllerSettings(namespace="ml", kubeflow_status_address="tc-api.ml.svc:8082")
    training = record()
    pod = build_job(training, settings)["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["KUBEFLOW_TRAINER_SERVER_URL"] == (
        "http://tc-api.ml.svc:8082/apis/trainer.kubeflow.org/v1alpha1/namespaces/ml/trainjobs/"
        f"{training.id}/status"
    )
    (mount,) = pod["containers"][0]["volumeMounts"]
    assert env["KUBEFLOW_TRAINER_SERVER_TOKEN"] == f"{mount['mountPath']}/token"
    assert env["KUBEFLOW_TRAINER_SERVER_CA_CERT"] == f"{mount['mountPath']}/ca.crt"
    sources = pod["volumes"][0]["projected"]["sources"]
    assert [next(iter(s)) for s in sources] == ["serviceAccountToken", "configMap"]
