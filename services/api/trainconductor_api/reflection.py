"""Server reflection that also finds a service's methods by name, the way
grpcurl, Postman and Evans look them up."""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FileDescriptor, ServiceDescriptor
from google.protobuf.descriptor_pool import DescriptorPool


class MethodResolvingPool:
    """A descriptor pool whose `FindFileContainingSymbol` also knows
    `package.Service.Method`.

    Describing a method, such tools ask reflection for the file containing
    the method's full name; grpc-go's reflection answers it. grpcio-reflection
    passes the name to the pool, and protobuf's upb pool (the default
    implementation) finds services, messages, enums and fields but not
    methods: the answer was "Symbol not found" (grpc/grpc#34743). A method is
    in its service's file, so a name the pool does not know is looked up
    again as a service and one of its methods.

    Everything else the reflection servicer asks goes to the pool unchanged.
    """

    def __init__(self, pool: DescriptorPool) -> None:
        self._pool = pool

    def FindFileContainingSymbol(self, symbol: str) -> FileDescriptor:  # the pool's own method name
        try:
            return self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            service = self._service_with_method(symbol)
            if service is None:
                raise
            return service.file

    def _service_with_method(self, symbol: str) -> ServiceDescriptor | None:
        service_name, _, method_name = symbol.rpartition(".")
        try:
            service = self._pool.FindServiceByName(service_name)
        except KeyError:
            return None
        return service if method_name in service.methods_by_name else None

    def __getattr__(self, name: str) -> Any:
        # The servicer also finds files by name and messages and extensions
        # by number; those the pool answers as it is.
        return getattr(self._pool, name)
