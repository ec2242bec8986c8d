# The images of both services, one target each. Build from the repository
# root:
#
#   docker build --target api -t train-conductor-api .
#   docker build --target controller -t train-conductor-controller .
#
# (`make images` builds both; without Docker, hack/images.sh builds them with
# podman.)
#
# An image holds its service's package and what that package declares
# (dependencies, and the extras asked for: API_EXTRAS), each distribution
# installed from requirements.lock and checked against its hash there: the
# linters and the test tools of the lock stay out.
#
# Any image with Python 3.11 as `python3` and its venv module: python:3.11-slim,
# or the Debian one hack/images.sh makes (python3 of Debian's packages).
ARG BASE_IMAGE=python:3.11-slim

# What both services' builds share: the locked wheels, and the wheels of the
# packages both install (the generated code, the core).
FROM ${BASE_IMAGE} AS wheels
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src

# pip in a venv of the base's python3, first on PATH (as `pip` and `python`):
# the same tools on python:3.11-slim and on a Debian base whose python3 comes
# from its packages (no pip outside a venv there). The venvs made below with
# it use the base's interpreter, which the final stages have too.
RUN python3 -m venv /opt/pip
ENV PATH=/opt/pip/bin:${PATH}

# Every locked wheel, each checked against its hash; nothing else is fetched.
# The building machine's pip settings, when it needs some (an index mirror, a
# proxy's CA bundle mounted for the build): build arguments of this stage
# only, so none of them reaches an image.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_CERT
ARG PIP_DEFAULT_TIMEOUT
COPY requirements.lock ./
RUN pip download --require-hashes --no-deps --only-binary=:all: --dest /wheels \
      -r requirements.lock

# The project's packages are built with the locked setuptools (no unpinned
# build requirements are fetched), in /opt/build.
COPY hack/runtime-venv.sh /usr/local/bin/runtime-venv
COPY proto/python proto/python
COPY core core
RUN python -m venv --without-pip /opt/build \
 && pip --python /opt/build/bin/python install --no-index --no-deps /wheels/setuptools-*.whl \
 && pip --python /opt/build/bin/python wheel --no-index --no-deps --no-build-isolation \
      --wheel-dir /wheels ./proto/python ./core

# The API's virtualenv.
FROM wheels AS api-venv
COPY services/api services/api
RUN pip --python /opt/build/bin/python wheel --no-index --no-deps --no-build-isolation \
      --wheel-dir /wheels ./services/api
# The extras of trainconductor-api the image holds, comma-separated.
# token-review (the default, as it is the chart's default auth mode): the
# Kubernetes client, with which the API asks the apiserver about callers'
# tokens. Empty: an image without it, for an API that serves the other modes
# only (static-token, mtls, none) with less code in it.
ARG API_EXTRAS=token-review,pod-logs
RUN runtime-venv "trainconductor-api[${API_EXTRAS}]"

# The controller's virtualenv.
FROM wheels AS controller-venv
COPY services/controller services/controller
RUN pip --python /opt/build/bin/python wheel --no-index --no-deps --no-build-isolation \
      --wheel-dir /wheels ./services/controller \
 && runtime-venv trainconductor-controller \
 && /opt/venv/bin/python -c "import importlib.util, sys; \
sys.exit('the gRPC server is in the controller image' if importlib.util.find_spec('grpc_reflection') else 0)"

# What both images are, but their service: a user of their own, and a
# read-only root filesystem (bytecode was compiled at install, logs go to
# stdout).
FROM ${BASE_IMAGE} AS runtime
ARG UID=10001
ARG GID=10001
RUN groupadd --system --gid "${GID}" trainconductor \
 && useradd --system --uid "${UID}" --gid "${GID}" --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin trainconductor
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER ${UID}:${GID}
STOPSIGNAL SIGTERM

FROM runtime AS controller
LABEL org.opencontainers.image.title="train-conductor-controller" \
      org.opencontainers.image.description="Train Conductor's controller: turns recorded trainings into Kubernetes Jobs."
COPY --from=controller-venv /opt/venv /opt/venv
# HTTP: /metrics, /healthz, /readyz.
EXPOSE 8080
# SIGTERM stops the work; a replica that loses the Lease exits with code 3
# and is restarted as a follower.
ENTRYPOINT ["/opt/venv/bin/trainconductor-controller"]

FROM runtime AS api
LABEL org.opencontainers.image.title="train-conductor-api" \
      org.opencontainers.image.description="Train Conductor's gRPC API: validates, records and serves trainings."
COPY --from=api-venv /opt/venv /opt/venv
# gRPC (services, health, reflection) and HTTP (/metrics).
EXPOSE 50051 9464
# SIGTERM turns health NOT_SERVING and drains for TC_DRAIN_SECONDS.
ENTRYPOINT ["/opt/venv/bin/trainconductor-api"]
