"""`tcctl`: submit, list, follow, hold, release and cancel trainings.

Exit codes, for scripts:
  0 success            3 not found          4 invalid spec or argument
  5 unavailable        6 not allowed        7 the training FAILED (--wait)
  8 the training was CANCELED (--wait)      9 timed out
  1 anything else      2 wrong usage
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from google.protobuf.duration_pb2 import Duration
from trainconductor.v1 import training_service_pb2 as pb

from trainconductor_client.cli.live import follow, follow_all
from trainconductor_client.cli.logs import parse_duration, print_logs
from trainconductor_client.cli.output import FORMATS, phase_name, render
from trainconductor_client.client import FINAL_PHASES, Client
from trainconductor_client.errors import (
    DeadlineExceeded,
    HistoryTrimmed,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    TrainConductorError,
    Unauthenticated,
    Unavailable,
)
from trainconductor_client.spec import SpecError, load_spec

F = TypeVar("F", bound=Callable[..., Any])

EXIT_ERROR, EXIT_NOT_FOUND, EXIT_INVALID, EXIT_UNAVAILABLE = 1, 3, 4, 5
EXIT_DENIED, EXIT_FAILED, EXIT_CANCELED, EXIT_TIMEOUT = 6, 7, 8, 9

PHASES = [p.removeprefix("PHASE_") for p in pb.Phase.keys() if p != "PHASE_UNSPECIFIED"]  # noqa: SIM118 - an enum wrapper, not a dict


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"tcctl: {message}", err=True)
    sys.exit(code)


def failure(err: SpecError | TrainConductorError | TimeoutError) -> tuple[str, int]:
    """What tcctl says of a failure, and its exit code."""
    if isinstance(err, SpecError):
        return f"invalid spec: {err}", EXIT_INVALID
    if isinstance(err, InvalidArgument):
        fields = "; ".join(f"{v.field}: {v.description}" for v in err.violations)
        return f"invalid: {fields or err.message}", EXIT_INVALID
    if isinstance(err, NotFound):
        return f"not found: {err.message}", EXIT_NOT_FOUND
    if isinstance(err, Unavailable):
        return (
            f"unavailable: {err.message} (is the API running at the --address?)",
            EXIT_UNAVAILABLE,
        )
    if isinstance(err, (Unauthenticated, PermissionDenied)):
        return f"not allowed: {err.message}", EXIT_DENIED
    if isinstance(err, (DeadlineExceeded, TimeoutError)):
        return f"timed out: {err}", EXIT_TIMEOUT
    return f"{err.code.name.lower()}: {err.message}", EXIT_ERROR


def handle_errors(command: F) -> F:
    """Every failure becomes one line on stderr and an exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (SpecError, TrainConductorError, TimeoutError) as err:
            fail(*failure(err))

    return wrapper  # type: ignore[return-value]


def client_of(ctx: click.Context) -> Client:
    client: Client = ctx.obj["client"]()
    ctx.call_on_close(client.close)
    return client


def output_option(command: F) -> F:
    return click.option(
        "-o", "--output", type=click.Choice(FORMATS), default="table", show_default=True,
        help="Output format.",
    )(command)  # fmt: skip


def wait_timeout_option(command: F) -> F:
    return click.option(
        "--wait-timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
        help="Stop following after this long (exit 9); the training goes on.",
    )(command)  # fmt: skip


def is_tty() -> bool:
    return sys.stdout.isatty()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "TC"})
@click.option(
    "--address",
    envvar="TC_ADDRESS",
    default="127.0.0.1:50051",
    show_default=True,
    help="The API's host:port (TC_ADDRESS).",
)
@click.option("--tls/--no-tls", envvar="TC_TLS", default=False, help="Use TLS (TC_TLS).")
@click.option(
    "--ca-file",
    envvar="TC_CA_FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="CA bundle to verify the API (TC_CA_FILE).",
)
@click.option(
    "--cert-file",
    envvar="TC_CERT_FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="Client certificate for mTLS (TC_CERT_FILE).",
)
@click.option(
    "--key-file",
    envvar="TC_KEY_FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="Client key for mTLS (TC_KEY_FILE).",
)
@click.option("--token", envvar="TC_TOKEN", help="Bearer token (TC_TOKEN).")
@click.option(
    "--token-file",
    envvar="TC_TOKEN_FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="File holding the bearer token, read again when it changes; e.g. a projected "
    "ServiceAccount token (TC_TOKEN_FILE).",
)
@click.option(
    "--user",
    envvar="TC_USER",
    help="Your name, when the API runs without authentication (TC_USER).",
)
@click.option(
    "--timeout",
    envvar="TC_TIMEOUT",
    type=float,
    default=10.0,
    show_default=True,
    help="Deadline of each call, in seconds.",
)
@click.pass_context
def cli(
    ctx: click.Context,
    address: str,
    tls: bool,
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    token: str | None,
    token_file: str | None,
    user: str | None,
    timeout: float,
) -> None:
    """Submit, follow and cancel ML fine-tuning trainings on Train Conductor."""
    ctx.ensure_object(dict)
    ctx.obj["client"] = lambda: Client(
        address, tls=tls, ca_file=ca_file, cert_file=cert_file, key_file=key_file,
        token=token, token_file=token_file, user=user, timeout=timeout,
    )  # fmt: skip


def _labels(values: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not key=value", param_hint="--label")
        labels[key] = val
    return labels


@cli.command()
@click.option(
    "-f",
    "--file",
    "spec_file",
    type=click.Path(path_type=Path),
    help="A training spec, YAML or JSON (see examples/); - reads standard input.",
)
@click.option("--model", help="Name of the fine-tuned model (spec.model_name).")
@click.option("--base-model", help="Model to start from (spec.parameters.base_model).")
@click.option("--data", help="Training data path (spec.parameters.data_path).")
@click.option("--output-path", help="Where the model is written (spec.output_path).")
@click.option("--gpus", type=int, help="GPUs to use, per node.")
@click.option(
    "--nodes",
    type=click.IntRange(min=1),
    help="Nodes to run on, one pod each (spec.resources.nodes); default 1.",
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0),
    help="Failed attempts to retry (spec.max_retries); default: the operator's.",
)
@click.option("--epochs", type=float, help="Training epochs.")
@click.option("--deadline", type=int, help="Longest run time, in seconds.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="A label; repeatable.")
@click.option("--queue", help="The queue (Kueue LocalQueue) to wait in for quota (spec.queue).")
@click.option("--priority", help="Its priority there: a WorkloadPriorityClass (spec.priority).")
@click.option("--request-id", help="Makes a retried create return the first training.")
@click.option(
    "--wait",
    is_flag=True,
    help="Follow the training to its end; exit non-zero unless it COMPLETED.",
)
@wait_timeout_option
@output_option
@click.pass_context
@handle_errors
def create(
    ctx: click.Context,
    spec_file: Path | None,
    model: str | None,
    base_model: str | None,
    data: str | None,
    output_path: str | None,
    gpus: int | None,
    nodes: int | None,
    max_retries: int | None,
    epochs: float | None,
    deadline: int | None,
    labels: tuple[str, ...],
    queue: str | None,
    priority: str | None,
    request_id: str | None,
    wait: bool,
    wait_timeout: float | None,
    output: str,
) -> None:
    """Submit a training, from a spec file and/or flags (flags win)."""
    if spec_file is None and model is None:
        raise click.UsageError(
            "give a spec file (-f FILE, or -f - for standard input; see examples/) "
            "or at least --model"
        )
    spec = load_spec(spec_file) if spec_file else pb.TrainingSpec()
    if model:
        spec.model_name = model
    if output_path:
        spec.output_path = output_path
    if base_model:
        spec.parameters.base_model = base_model
    if data:
        spec.parameters.data_path = data
    if epochs is not None:
        spec.parameters.num_train_epochs = epochs
    if gpus is not None:
        spec.resources.gpus = gpus
    if nodes is not None:
        spec.resources.nodes = nodes
    if max_retries is not None:
        spec.max_retries = max_retries
    if deadline is not None:
        spec.deadline.CopyFrom(Duration(seconds=deadline))
    spec.labels.update(_labels(labels))
    if queue:
        spec.queue = queue
    if priority:
        spec.priority = priority
    client = client_of(ctx)
    training = client.create(spec, request_id=request_id)
    if not wait:
        click.echo(render([training], output, tty=is_tty(), single=True))
        return
    # The id first, wherever the output goes: Ctrl-C or a timeout stops the
    # following, not the training, which the id then finds.
    click.echo(
        f"training {training.id} created; following it (Ctrl-C stops following, not the training)",
        err=output != "table",
    )
    if output == "table":
        events = client.watch(training.id, timeout=wait_timeout)
        follow(events, tty=is_tty(), started=time.time(), queue=training.queue)
        final = client.get(training.id)
        click.echo(
            f"{training.id} {phase_name(final.phase)}: {final.reason} {final.message}".rstrip()
        )
    else:
        final = client.wait(training.id, timeout=wait_timeout)
        click.echo(render([final], output, tty=False, single=True))
    _exit_for(final)


def _exit_for(training: pb.Training) -> None:
    if training.phase == pb.PHASE_FAILED:
        sys.exit(EXIT_FAILED)
    if training.phase == pb.PHASE_CANCELED:
        sys.exit(EXIT_CANCELED)


@cli.command()
@click.argument("training_ids", nargs=-1, required=True)
@output_option
@click.pass_context
@handle_errors
def get(ctx: click.Context, training_ids: tuple[str, ...], output: str) -> None:
    """Show trainings by id."""
    client = client_of(ctx)
    trainings = [client.get(i) for i in training_ids]
    single = len(trainings) == 1
    click.echo(render(trainings, output, tty=is_tty(), single=single, detail=single))


@cli.command(name="list")
@click.option("--phase", type=click.Choice(PHASES, case_sensitive=False), help="Only this phase.")
@click.option("--owner", default="", help="Only this owner's.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    help="Only with this label; repeatable.",
)
@click.option("--queue", default="", help="Only those in this queue.")
@click.option(
    "--limit", type=int, default=50, show_default=True, help="At most this many (0: all)."
)
@click.option(
    "--page-size",
    type=int,
    default=0,
    help="Fetch one page of this size and print its next-page token.",
)
@click.option("--page-token", default="", help="Continue from a next-page token.")
@output_option
@click.pass_context
@handle_errors
def list_(
    ctx: click.Context,
    phase: str | None,
    owner: str,
    labels: tuple[str, ...],
    queue: str,
    limit: int,
    page_size: int,
    page_token: str,
    output: str,
) -> None:
    """List trainings, newest first."""
    client = client_of(ctx)
    phase_value = pb.Phase.Value(f"PHASE_{phase.upper()}") if phase else pb.PHASE_UNSPECIFIED
    if page_size or page_token:
        trainings, token = client.list_page(
            phase=phase_value, owner=owner, labels=_labels(labels),
            page_size=page_size or 50, page_token=page_token, queue=queue,
        )  # fmt: skip
        if trainings or output != "table":
            click.echo(render(trainings, output, tty=is_tty()))
        if token:
            click.echo(f"next page: --page-token {token}", err=True)
        return
    found = list(
        client.list(
            phase=phase_value,
            owner=owner,
            labels=_labels(labels),
            limit=limit or None,
            queue=queue,
        )
    )
    if not found and output == "table":
        click.echo("no trainings found", err=True)
        return
    click.echo(render(found, output, tty=is_tty()))


@cli.command()
@click.argument("training_ids", nargs=-1, required=True)
@output_option
@click.pass_context
@handle_errors
def cancel(ctx: click.Context, training_ids: tuple[str, ...], output: str) -> None:
    """Cancel trainings. A finished training stays as it finished.

    Each id is tried: one that fails (not found, not yours) is told on
    stderr, the others are canceled, and the exit code is the first failure's."""
    client = client_of(ctx)
    trainings = []
    refused: list[int] = []
    for training_id in training_ids:
        try:
            trainings.append(client.cancel(training_id))
        except TrainConductorError as err:
            message, code = failure(err)
            click.echo(f"tcctl: {training_id}: {message}", err=True)
            refused.append(code)
    if trainings and output != "table":
        click.echo(render(trainings, output, tty=False, single=len(trainings) == 1))
    elif output == "table":
        for t in trainings:
            if t.phase in (pb.PHASE_COMPLETED, pb.PHASE_FAILED, pb.PHASE_CANCELED):
                click.echo(f"{t.id} already {phase_name(t.phase)}; unchanged")
            else:
                click.echo(f"{t.id} cancel requested")
    if refused:
        sys.exit(refused[0])


def _each(
    ctx: click.Context,
    training_ids: tuple[str, ...],
    call: Callable[[Client, str], pb.Training],
    output: str,
    said: Callable[[pb.Training], str],
) -> None:
    """Makes `call` for each id: one that fails is told on stderr, the
    others go on, and the exit code is the first failure's."""
    client = client_of(ctx)
    trainings = []
    refused: list[int] = []
    for training_id in training_ids:
        try:
            trainings.append(call(client, training_id))
        except TrainConductorError as err:
            message, code = failure(err)
            click.echo(f"tcctl: {training_id}: {message}", err=True)
            refused.append(code)
    if trainings and output != "table":
        click.echo(render(trainings, output, tty=False, single=len(trainings) == 1))
    elif output == "table":
        for t in trainings:
            click.echo(said(t))
    if refused:
        sys.exit(refused[0])


def _finished(training: pb.Training) -> bool:
    return training.phase in (pb.PHASE_COMPLETED, pb.PHASE_FAILED, pb.PHASE_CANCELED)


@cli.command()
@click.argument("training_ids", nargs=-1, required=True)
@output_option
@click.pass_context
@handle_errors
def hold(ctx: click.Context, training_ids: tuple[str, ...], output: str) -> None:
    """Take queued trainings out of their queue (running ones stop and give
    their quota back) until `tcctl release`. A finished one stays as it is."""

    def said(t: pb.Training) -> str:
        if _finished(t):
            return f"{t.id} already {phase_name(t.phase)}; unchanged"
        return f"{t.id} held; out of queue {t.queue} until released"

    _each(ctx, training_ids, Client.hold, output, said)


@cli.command()
@click.argument("training_ids", nargs=-1, required=True)
@output_option
@click.pass_context
@handle_errors
def release(ctx: click.Context, training_ids: tuple[str, ...], output: str) -> None:
    """Put held trainings back in their queue."""

    def said(t: pb.Training) -> str:
        if _finished(t):
            return f"{t.id} already {phase_name(t.phase)}; unchanged"
        return f"{t.id} released; back in queue {t.queue}"

    _each(ctx, training_ids, Client.release, output, said)


@cli.command()
@click.argument("training_id", required=False)
@click.option("--owner", default="", help="Without an id: only this owner's trainings.")
@wait_timeout_option
@click.pass_context
@handle_errors
def watch(
    ctx: click.Context, training_id: str | None, owner: str, wait_timeout: float | None
) -> None:
    """Follow a training live until it finishes; exit as --wait does.

    Without an id: every training you may see, one line per event, from now
    until Ctrl-C."""
    client = client_of(ctx)
    if training_id is None:
        follow_all(client.watch_all(owner=owner, timeout=wait_timeout), tty=is_tty())
        return
    if owner:
        raise click.UsageError("--owner is for watching all trainings; give no id with it")
    training = client.get(training_id)
    while True:
        events = client.watch(training_id, timeout=wait_timeout)
        try:
            follow(
                events, tty=is_tty(), started=training.create_time.ToSeconds(), queue=training.queue
            )
            break
        except HistoryTrimmed:
            # Fallen behind what the training keeps: say so, and go on from
            # the oldest event kept, unless it is over.
            click.echo("tcctl: events were missed (only a training's latest are kept)", err=True)
            if client.get(training_id).phase in FINAL_PHASES:
                break
    _exit_for(client.get(training_id))


@cli.command()
@click.argument("training_id")
@click.option(
    "-f", "--follow", is_flag=True, help="Print lines as they are written, until it ends."
)
@click.option(
    "--rank",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Which rank (pod index) of a multi-node training.",
)
@click.option(
    "--attempt",
    type=click.IntRange(min=0),
    default=0,
    help="Which attempt, from 1 [default: the latest].",
)
@click.option(
    "--tail", type=click.IntRange(min=0), default=0, help="Only the last N lines [default: all]."
)
@click.option("--since", metavar="DURATION", help="Only lines newer than this: 30s, 10m, 1h.")
@click.option("--timestamps", is_flag=True, help="Begin each line with when it was written.")
@wait_timeout_option
@click.pass_context
@handle_errors
def logs(
    ctx: click.Context,
    training_id: str,
    follow: bool,
    rank: int,
    attempt: int,
    tail: int,
    since: str | None,
    timestamps: bool,
    wait_timeout: float | None,
) -> None:
    """Print a training's log: its pod's, or once its pods are gone, the end
    of it kept when it finished."""
    try:
        since_seconds = parse_duration(since) if since is not None else None
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--since") from None
    batches = client_of(ctx).logs(
        training_id, rank=rank, attempt=attempt, tail=tail, since=since_seconds,
        follow=follow, timeout=wait_timeout,
    )  # fmt: skip
    if not print_logs(batches, timestamps=timestamps) and not follow:
        # Said apart from the log, so that a script reading it reads nothing.
        click.echo(
            "tcctl: no log lines: its trainer has not started or wrote none, or none match",
            err=True,
        )


@cli.command()
@click.pass_context
@handle_errors
def health(ctx: click.Context) -> None:
    """Show the API's health; exit 5 unless it is SERVING."""
    statuses = client_of(ctx).health()
    for service, status in statuses.items():
        click.echo(f"{service:<40} {status}")
    if any(s != "SERVING" for s in statuses.values()):
        sys.exit(EXIT_UNAVAILABLE)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: eval "$(tcctl completion bash)"."""
    from click.shell_completion import get_completion_class

    completion_class = get_completion_class(shell)
    assert completion_class is not None
    click.echo(completion_class(cli, {}, "tcctl", "_TCCTL_COMPLETE").source())


def main() -> None:
    cli(prog_name="tcctl")


if __name__ == "__main__":
    main()
