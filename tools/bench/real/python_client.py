#!/usr/bin/env python3
"""What a Python service sees of trove: grpcio's default channel (with the
compression it advertises), the generated stubs, one call at a time. For twice
`--seconds`, runs the queries of a file and empty unary calls (a health check:
the gRPC floor) on the same channel in turns of `--turn` seconds each, and
prints one JSON line of latencies in milliseconds.

    python_client.py --addr 127.0.0.1:50051 --proto proto --queries queries.txt --seconds 5

Needs grpcio, grpcio-tools (to generate the stubs from `--proto`) and
grpcio-health-checking.
"""

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
import time


def stubs(proto_root: str, out: str):
    """Generates the Python stubs of trove.v1 into `out` and imports them."""
    files = [
        "trove/v1/collection.proto",
        "trove/v1/document.proto",
        "trove/v1/search.proto",
        "trove/v1/search_service.proto",
    ]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{proto_root}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            *files,
        ],
        check=True,
    )
    sys.path.insert(0, out)
    messages = importlib.import_module("trove.v1.search_service_pb2")
    service = importlib.import_module("trove.v1.search_service_pb2_grpc")
    return messages, service


def percentile(samples, p):
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), -(-len(ordered) * p // 100)))
    return ordered[int(rank) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--addr", required=True)
    ap.add_argument("--proto", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--collection", default="news")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--turn", type=float, default=0.25, help="seconds of each turn")
    args = ap.parse_args()

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with tempfile.TemporaryDirectory() as out:
        search_pb2, service = stubs(args.proto, out)
        queries = [q for q in open(args.queries).read().splitlines() if q.strip()]
        channel = grpc.insecure_channel(args.addr)
        search = service.SearchServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        # The first calls open the connection.
        health.Check(health_pb2.HealthCheckRequest())
        search.Search(search_pb2.SearchRequest(collection=args.collection, query=queries[0]))

        # Searches and empty calls in turns: both see the same spells of a shared
        # machine, and what a search leaves to do after its answer falls on the
        # next search, as in a run of searches.
        searched, floor, hits = [], [], 0
        until = time.perf_counter() + 2 * args.seconds
        i = 0
        while time.perf_counter() < until:
            turn = time.perf_counter() + args.turn
            while time.perf_counter() < turn:
                request = search_pb2.SearchRequest(
                    collection=args.collection, query=queries[i % len(queries)], page_size=10
                )
                started = time.perf_counter()
                response = search.Search(request)
                searched.append((time.perf_counter() - started) * 1000)
                hits += len(response.hits)
                i += 1
            turn = time.perf_counter() + args.turn
            while time.perf_counter() < turn:
                started = time.perf_counter()
                health.Check(health_pb2.HealthCheckRequest())
                floor.append((time.perf_counter() - started) * 1000)

    print(
        json.dumps(
            {
                "search_p50": percentile(searched, 50),
                "search_p99": percentile(searched, 99),
                "searches": len(searched),
                "hits": hits,
                "floor_p50": percentile(floor, 50),
                "floor_p99": percentile(floor, 99),
                "floor_calls": len(floor),
            }
        )
    )


if __name__ == "__main__":
    main()
