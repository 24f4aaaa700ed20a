"""A real OTLP/gRPC trace receiver on a loopback port (grpcio and the generated OTLP service),
keeping every export request and its metadata (the export headers)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


@dataclass
class Export:
    request: trace_service_pb2.ExportTraceServiceRequest
    metadata: dict[str, str]

    @property
    def span_names(self) -> list[str]:
        return [
            s.name for rs in self.request.resource_spans for ss in rs.scope_spans for s in ss.spans
        ]


@dataclass
class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    port: int = 0
    exports: list[Export] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.exports.append(Export(request, dict(context.invocation_metadata())))
        self.received.set()
        return trace_service_pb2.ExportTraceServiceResponse()


@contextmanager
def otlp_grpc_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    receiver.port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield receiver
    finally:
        server.stop(grace=None).wait(5)
