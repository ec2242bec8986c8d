"""Training specs the tests submit."""

from __future__ import annotations

from trainconductor.v1 import training_service_pb2 as pb


def lora_spec(model_name: str = "llama-lora", **labels: str) -> pb.TrainingSpec:
    return pb.TrainingSpec(
        model_name=model_name,
        output_path="/mnt/output/llama-lora",
        parameters=pb.FineTuningParameters(
            base_model="meta-llama/Llama-3.2-1B",
            data_path="/mnt/data/alpaca.jsonl",
            num_train_epochs=3,
            per_device_train_batch_size=8,
            learning_rate=2e-4,
            peft_method=pb.PEFT_METHOD_LORA,
            lora=pb.LoraParameters(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]),
        ),
        resources=pb.Resources(gpus=1, cpu="4", memory="16Gi"),
        labels=labels,
    )
