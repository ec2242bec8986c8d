"""Values the chart refuses, each failing the install with a message that
names what is wrong: the schema's checks and the templates' own."""

from __future__ import annotations

import pytest

from tests.support.chart import ALLOW_NONE, CHART, RELEASE, helm


@pytest.mark.parametrize(
    ("values", "named"),
    [
        pytest.param(["api.replicass=3"], "replicass", id="a misspelt key of the API"),
        pytest.param(
            ["controller.securityContext.readOnlyRootFileSystem=true"],
            "readOnlyRootFileSystem",
            id="a misspelt security setting that would otherwise be dropped",
        ),
        pytest.param(["redis.persistance.size=1Gi"], "persistance", id="a misspelt Redis key"),
        pytest.param(["api.grpc.port=70000"], "/api/grpc/port", id="a port out of range"),
        pytest.param(["redis.appendfsync=sometimes"], "appendfsync", id="a value off its list"),
        pytest.param(["api.image.repository="], "/api/image/repository", id="no API image"),
        pytest.param(
            ["api.drainSeconds=40"],
            "terminationGracePeriodSeconds",
            id="a grace period shorter than the drain",
        ),
        pytest.param(["auth.modes={tokenreview}"], "/auth/modes", id="a misspelt auth mode"),
        pytest.param(
            ["training.defaultMaxRetries=11"],
            "training.defaultMaxRetries (11) must be at most training.limits.maxRetries (10)",
            id="a default retry budget above the limit",
        ),
        pytest.param(
            ["training.userErrorExitCodes={0}"],
            "/training/userErrorExitCodes/0",
            id="exit code 0, a success, as a user's error",
        ),
        pytest.param(["training.limits.maxNodes=0"], "/training/limits/maxNodes", id="no node"),
        pytest.param(["auth.modes=null"], "modes", id="no auth mode"),
        pytest.param(["auth.rateLimit.createPerSecnd=1"], "createPerSecnd", id="a misspelt limit"),
        pytest.param(
            ["auth.tokenReveiw.audience=x"], "tokenReveiw", id="a misspelt token-review key"
        ),
        pytest.param(["api.tls.enable=true"], "enable", id="a misspelt TLS key"),
        pytest.param(
            ["auth.modes={none,token-review}"],
            "none can not be combined",
            id="none beside another mode",
        ),
        pytest.param(
            ["auth.modes={static-token}"],
            "auth.staticTokens.existingSecret",
            id="static tokens without their Secret",
        ),
        pytest.param(
            ["auth.modes={mtls}", "api.tls.enabled=true", "api.tls.secretName=tls"],
            "api.tls.clientCA",
            id="mtls without a client CA",
        ),
        pytest.param(["api.tls.enabled=true"], "api.tls.secretName", id="TLS without a Secret"),
        pytest.param(["api.tls.clientCA=true"], "api.tls.enabled", id="mTLS without TLS"),
        pytest.param(
            ["redis.enabled=true", "redis.users.api.username=me"],
            "redis.users.api",
            id="a user of your own Redis given to the bundled one",
        ),
        pytest.param(
            ["redis.url=redis://:hunter2@redis:6379/0"],
            "redis.url carries a password",
            id="a password in the Redis URL, which would land in a ConfigMap",
        ),
        pytest.param(
            ["api.resources.requests.memory=128ki"],
            "/api/resources/requests/memory",
            id="a quantity Kubernetes would refuse",
        ),
        pytest.param(
            ["api.pdb.minAvailable=2"], "api.pdb.minAvailable", id="a budget no eviction can meet"
        ),
        pytest.param(
            ["controller.serviceAccount.create=false"],
            "controller.serviceAccount.name",
            id="the controller's rights bound to the default ServiceAccount",
        ),
        pytest.param(
            ["fullnameOverride=" + "x" * 37],
            "fullnameOverride",
            id="a name too long to derive from",
        ),
        pytest.param(
            ["queues.defaultQueue=team-a"],
            "need queues.enabled",
            id="a default queue on an installation without queues",
        ),
        pytest.param(
            ["queues.enabled=true", "queues.defaultQueue=Team_A"],
            "/queues/defaultQueue",
            id="a default queue that is no LocalQueue name",
        ),
        pytest.param(
            ["queues.enabled=true", "queues.defaultPriority=High"],
            "/queues/defaultPriority",
            id="a default priority that is no WorkloadPriorityClass name",
        ),
        pytest.param(
            ["queues.enabled=true", "queues.groupDefaults[0].group=nlp"],
            "queue",
            id="a group's default without its queue",
        ),
        pytest.param(
            [
                "queues.enabled=true",
                "queues.groupDefaults[0].group=nlp",
                "queues.groupDefaults[0].queue=a",
                "queues.groupDefaults[1].group=nlp",
                "queues.groupDefaults[1].queue=b",
            ],
            "group nlp twice",
            id="one group given two default queues",
        ),
        pytest.param(
            ["queues.enabled=true", "queues.positionRefreshSeconds=0"],
            "/queues/positionRefreshSeconds",
            id="positions read without pause",
        ),
        pytest.param(
            ["prometheusRule.enabled=true"],
            "serviceMonitor",
            id="alerts on job names no ServiceMonitor gives",
        ),
    ],
)
def test_a_wrong_value_fails_the_install_naming_it(values: list[str], named: str) -> None:
    sets = [arg for value in values for arg in ("--set", value)]
    result = helm("template", RELEASE, str(CHART), *ALLOW_NONE, *sets)
    assert result.returncode != 0, "the chart accepted it"
    assert named in result.stderr, result.stderr


def test_an_image_tag_given_as_a_number_is_refused_not_rounded() -> None:
    # YAML reads `tag: 1.10` as the number 1.1, which would name another image.
    result = helm("template", RELEASE, str(CHART), "--set-json", "api.image.tag=1.10")
    assert result.returncode != 0, "the chart accepted it"
    assert "/api/image/tag" in result.stderr, result.stderr
