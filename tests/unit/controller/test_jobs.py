"""build_job(): the Job a training becomes, in what a user of it relies on."""

from __future__ import annotations

from tests.unit.controller.factories import record
from trainconductor_controller.jobs import build_job, deadline_seconds, trainer_config
from trainconductor_controller.names import INSTANCE_LABEL, made_by
from trainconductor_controller.settings import ControllerSettings


def test_kubernetes_neither_deletes_the_job_nor_counts_its_own_disruptions() -> None:
    spec = build_job(record(), ControllerSettings())["spec"]
    # Deleted by the controller once the verdict is recorded (plan.py).
    assert "ttlSecondsAfterFinished" not in spec
    # Set once the trainer runs (plan.py): Kubernetes would count the wait for a node.
    assert "activeDeadlineSeconds" not in spec
    # A drain, preemption or eviction restarts the pod instead of failing it.
    assert spec["podFailurePolicy"] == {
        "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
    }
    assert spec["template"]["spec"]["restartPolicy"] == "Never"  # which the policy needs


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
