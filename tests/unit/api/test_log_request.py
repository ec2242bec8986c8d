"""StreamTrainingLogs' request: each bad field named."""

from __future__ import annotations

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from trainconductor.v1 import training_service_pb2 as pb

from trainconductor_api.log_request import log_request_violations

ID = "0193a1b2c3d4e5f60718"


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        pytest.param(pb.StreamTrainingLogsRequest(id=ID, follow=True, tail_lines=10), [],
                     id="a followed tail is fine"),
        pytest.param(pb.StreamTrainingLogsRequest(id=ID, rank=-1, attempt=-2),
                     ["rank", "attempt"], id="negative rank and attempt, both named"),
        pytest.param(pb.StreamTrainingLogsRequest(id=ID, tail_lines=100_001), ["tail_lines"],
                     id="too long a tail"),
        pytest.param(pb.StreamTrainingLogsRequest(id=ID, since=Duration(seconds=-5)), ["since"],
                     id="a negative since"),
        pytest.param(pb.StreamTrainingLogsRequest(id=ID, since=Duration()), ["since"],
                     id="a zero since"),
        pytest.param(pb.StreamTrainingLogsRequest(id=ID, after_time=Timestamp(seconds=-1)),
                     ["after_time"], id="a time before the epoch"),
    ],
)  # fmt: skip
def test_bad_fields_are_named(request_: pb.StreamTrainingLogsRequest, fields: list[str]) -> None:
    assert [v.field for v in log_request_violations(request_)] == fields
