"""The Kubernetes Job of a training's attempt, and the headless Service of a
multi-node one. Pure: record and settings in, manifest out.

Nothing from the request reaches the Job except the training's
configuration (as JSON in the environment), its resources and nodes, and
the label with its id; the image, command, volumes and scheduling come from
the operator's settings.

A training on several nodes runs as an Indexed Job (one pod per node, its
completion index the node's rank) with a headless Service of the Job's name
that the pods name as their subdomain, so that rank 0 is reachable at
`<job>-0.<job>`. Each pod gets the environment torchrun reads, and the same
under Kubeflow Trainer's PET_ names, so that images made for it work.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf import json_format
from trainconductor.v1 import training_service_pb2 as pb

from trainconductor_controller.names import (
    ATTEMPT_ANNOTATION,
    COMPLETION_INDEX,
    CONTAINER_NAME,
    GENERATION_ANNOTATION,
    INSTANCE_LABEL,
    JOB_NAME_LABEL,
    MANAGED_BY,
    MANAGED_BY_VALUE,
    PRIORITY_LABEL,
    QUEUE_LABEL,
    TRACEPARENT_ANNOTATION,
    TRAINING_ID_LABEL,
    job_name,
)
from trainconductor_controller.progress_reporting import (
    progress_env,
    progress_mount,
    progress_volume,
)
from trainconductor_controller.settings import ControllerSettings
from trainconductor_core.record import TrainingRecord

CONFIG_ENV = "TC_TRAINING_CONFIG"
# fms-hf-tuning's launcher reads its arguments, base64-encoded JSON, from here.
SFT_TRAINER_CONFIG_ENV = "SFT_TRAINER_CONFIG_JSON_ENV_VAR"

# Any failed pod fails the attempt's Job at once, whatever failed it: a
# disruption or an exit code other than 0 (a container that never started
# fails it through backoffLimit 0). Kubernetes' own retries of a pod would
# restart one rank of a gang alone, which its peers do not survive, and
# would spend a retry on a disruption. The controller classifies the failure
# (failures.py) and makes the next attempt as a new Job, or fails the training.
_POD_FAILURE_POLICY = {
    "rules": [
        {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {
            "action": "FailJob",
            "onExitCodes": {"containerName": CONTAINER_NAME, "operator": "NotIn", "values": [0]},
        },
    ]
}
_PEFT_NAMES = {pb.PEFT_METHOD_LORA: "lora", pb.PEFT_METHOD_PROMPT_TUNING: "pt"}


def trainer_config(spec: pb.TrainingSpec) -> dict[str, Any]:
    """The SFT trainer's arguments, named as fms-hf-tuning names them."""
    params = json_format.MessageToDict(spec.parameters, preserving_proto_field_name=True)
    config: dict[str, Any] = {
        "model_name_or_path": params.pop("base_model", ""),
        "training_data_path": params.pop("data_path", ""),
        "output_dir": spec.output_path,
    }
    params.pop("peft_method", None)
    for block in ("lora", "prompt_tuning"):
        config.update(params.pop(block, {}))
    config.update(params)
    method = _PEFT_NAMES.get(spec.parameters.peft_method)
    if method:
        config["peft_method"] = method
    return config


def _resources(spec: pb.TrainingSpec, s: ControllerSettings) -> dict[str, Any]:
    requests = {
        "cpu": spec.resources.cpu or s.default_cpu,
        "memory": spec.resources.memory or s.default_memory,
    }
    limits: dict[str, str] = {"memory": requests["memory"]}
    if spec.resources.gpus:
        # Extended resources are requested through limits (requests follow).
        limits[s.gpu_resource] = str(spec.resources.gpus)
    return {"requests": requests, "limits": limits}


def deadline_seconds(record: TrainingRecord, s: ControllerSettings) -> int:
    """How long the training may run once its trainer started; 0 for no limit."""
    return (
        record.spec.deadline.seconds
        if record.spec.HasField("deadline")
        else s.default_deadline_seconds
    )


def nodes_of(spec: pb.TrainingSpec) -> int:
    """The nodes a training runs on (0 in the spec is 1)."""
    return max(spec.resources.nodes, 1)


def _rendezvous_env(
    name: str, spec: pb.TrainingSpec, s: ControllerSettings
) -> list[dict[str, Any]]:
    """What torchrun reads (`--nnodes` and the rest, from the environment),
    and the same under Kubeflow Trainer's PET_ names. NNODES is the number of
    nodes and WORLD_SIZE the processes of all of them, as torchrun means them."""
    nodes = nodes_of(spec)
    per_node = max(spec.resources.gpus, 1)
    rank = {"fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}
    values: list[tuple[str, dict[str, Any]]] = [
        ("MASTER_ADDR", {"value": f"{name}-0.{name}"}),
        ("MASTER_PORT", {"value": str(s.master_port)}),
        ("NNODES", {"value": str(nodes)}),
        ("NODE_RANK", {"valueFrom": rank}),
        ("NPROC_PER_NODE", {"value": str(per_node)}),
    ]
    env = [{"name": n, **v} for n, v in values]
    env.append({"name": "WORLD_SIZE", "value": str(nodes * per_node)})
    env += [{"name": f"PET_{n}", **v} for n, v in values]
    return env


def build_service(
    record: TrainingRecord, s: ControllerSettings, name: str, job_uid: str
) -> dict[str, Any]:
    """The headless Service of a multi-node attempt: named as its Job, the
    pods' subdomain, and owned by the Job, so that it goes with it. Its
    addresses are published before the pods are ready: ranks find each
    other while they start."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": s.namespace,
            "labels": {
                MANAGED_BY: MANAGED_BY_VALUE,
                TRAINING_ID_LABEL: record.id,
                INSTANCE_LABEL: s.lease_name,
            },
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": name,
                    "uid": job_uid,
                    "controller": True,
                }
            ],
        },
        "spec": {
            "clusterIP": "None",
            "selector": {JOB_NAME_LABEL: name},
            "publishNotReadyAddresses": True,
            "ports": [{"name": "rendezvous", "port": s.master_port, "protocol": "TCP"}],
        },
    }


def build_job(record: TrainingRecord, s: ControllerSettings, attempt: int = 1) -> dict[str, Any]:
    name = job_name(record.id, attempt)
    nodes = nodes_of(record.spec)
    config = json.dumps(trainer_config(record.spec), sort_keys=True, separators=(",", ":"))
    labels = {
        MANAGED_BY: MANAGED_BY_VALUE,
        TRAINING_ID_LABEL: record.id,
        INSTANCE_LABEL: s.lease_name,
    }
    annotations = {GENERATION_ANNOTATION: str(record.generation), ATTEMPT_ANNOTATION: str(attempt)}
    if "traceparent" in record.trace_context:
        annotations[TRACEPARENT_ANNOTATION] = record.trace_context["traceparent"]
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": s.image,
        "command": list(s.command),
        "env": [
            {"name": "TC_TRAINING_ID", "value": record.id},
            {"name": CONFIG_ENV, "value": config},
            {"name": SFT_TRAINER_CONFIG_ENV, "value": base64.b64encode(config.encode()).decode()},
            *progress_env(s, record.id),
        ],
        "resources": _resources(record.spec, s),
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    if nodes > 1:
        container["env"] += _rendezvous_env(name, record.spec, s)
        container["ports"] = [{"name": "rendezvous", "containerPort": s.master_port}]
    mounts = [
        *({"name": v.name, "mountPath": v.mount_path, "readOnly": v.read_only} for v in s.volumes),
        *progress_mount(s),
    ]
    if mounts:
        container["volumeMounts"] = mounts
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
    }
    if s.service_account:
        pod_spec["serviceAccountName"] = s.service_account
    volumes = [
        *(
            {
                "name": v.name,
                "persistentVolumeClaim": {"claimName": v.claim_name, "readOnly": v.read_only},
            }
            for v in s.volumes
        ),
        *progress_volume(s),
    ]
    if volumes:
        pod_spec["volumes"] = volumes
    if s.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in s.image_pull_secrets]
    if s.node_selector:
        pod_spec["nodeSelector"] = dict(s.node_selector)
    if s.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in s.tolerations]
    if s.priority_class:
        pod_spec["priorityClassName"] = s.priority_class
    if nodes > 1:
        pod_spec["subdomain"] = name  # the headless Service's name
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "podFailurePolicy": _POD_FAILURE_POLICY,
        # No ttlSecondsAfterFinished: were Kubernetes to delete a finished Job
        # before its verdict was recorded (the controller down for longer),
        # the training would look deleted mid-run. The controller deletes it
        # after recording the verdict (plan.py).
        # No activeDeadlineSeconds yet: Kubernetes counts it from the Job's
        # start, hours of waiting for a GPU included. The controller sets it
        # once the trainer runs, adding the wait (plan.py).
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }
    if s.pod_annotations:
        job_spec["template"]["metadata"]["annotations"] = dict(s.pod_annotations)
    if nodes > 1:
        job_spec |= {"completionMode": "Indexed", "completions": nodes, "parallelism": nodes}
    job_labels = dict(labels)
    if record.queue:
        # Kueue's: the Job waits in this LocalQueue, at this priority. It is
        # made suspended, so that no pod starts before Kueue admits it, even
        # were Kueue's webhook (which suspends it too) slow or down.
        job_labels[QUEUE_LABEL] = record.queue
        if record.priority:
            job_labels[PRIORITY_LABEL] = record.priority
        job_spec["suspend"] = True
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": s.namespace,
            "labels": job_labels,
            "annotations": annotations,
        },
        "spec": job_spec,
    }
