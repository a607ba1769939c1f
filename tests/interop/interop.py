"""Interop checks against a running trove server (see run.sh).

1. Every ```sh block of README.md and docs/QUERY.md that runs grpcurl is run as written (with the
   address replaced), and those of docs/SECURITY.md against a second server with TLS
   and API keys set up as that page says (`prepare-secure DIR` writes its key file
   and runs its openssl commands in DIR); when the README shows the output in the next fenced block,
   each line shown (but "…") must appear in the real output, and a shown "ERROR:"
   means the command must fail.
2. Python grpcio: health for every service, reflection (v1alpha, as grpcurl 1.8
   uses) resolving the trove types, a Search built from reflected descriptors, and
   undecodable bytes answered with INVALID_ARGUMENT.
3. Every ```python block of docs/SERVICE.md, run with this Python and TROVE_ADDR set: the
   guide's service (stubs from proto/, error details, retries, paging, facets) must work.
"""

import os
import re
import subprocess
import sys
import time

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

ADDR = sys.argv[1] if len(sys.argv) > 1 else ""
failures = 0
passed = 0


def check(condition, what):
    global failures, passed
    if condition:
        passed += 1
        print(f"ok: {what}")
    else:
        failures += 1
        print(f"FAIL: {what}")


def wait_serving(channel):
    grpc.channel_ready_future(channel).result(timeout=60)
    stub = health_pb2_grpc.HealthStub(channel)
    # Watch streams every change of status: block until SERVING.
    for response in stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=60):
        if response.status == health_pb2.HealthCheckResponse.SERVING:
            return


def doc_blocks(path):
    text = open(path, encoding="utf-8").read()
    blocks = re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S)
    for i, (lang, body) in enumerate(blocks):
        if lang != "sh" or not body.lstrip().startswith("grpcurl"):
            continue
        shown = None
        if i + 1 < len(blocks) and blocks[i + 1][0] in ("json", ""):
            shown = blocks[i + 1][1]
        yield body, shown


def fenced(path, lang, starts_with):
    """The first fenced block of `path` in `lang` whose text starts with `starts_with`."""
    text = open(path, encoding="utf-8").read()
    for block_lang, body in re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S):
        if block_lang == lang and body.lstrip().startswith(starts_with):
            return body
    raise SystemExit(f"{path} has no {lang!r} block starting with {starts_with!r}")


def prepare_secure(directory):
    """Writes docs/SECURITY.md's key file and runs its openssl commands in `directory`."""
    doc = "docs/SECURITY.md"
    with open(f"{directory}/keys.toml", "w", encoding="utf-8") as keys:
        keys.write(fenced(doc, "toml", "[[keys]]"))
    commands = fenced(doc, "", "openssl")
    subprocess.run(["bash", "-c", "set -e\n" + commands], cwd=directory, check=True, capture_output=True)


def run_doc_examples(path, replace=("localhost:50051", ADDR), cwd=None):
    for body, shown in doc_blocks(path):
        script = body.replace(*replace)
        result = subprocess.run(["bash", "-c", "set -e\n" + script], capture_output=True, text=True, timeout=60, cwd=cwd)
        output = result.stdout + result.stderr
        first = body.strip().splitlines()[0]
        expect_error = shown is not None and "ERROR:" in shown
        if expect_error:
            check(result.returncode != 0, f"{path} example fails as shown: {first}")
        else:
            check(result.returncode == 0, f"{path} example runs: {first}\n{output if result.returncode else ''}")
        if shown:
            missing = 0
            for line in shown.splitlines():
                line = line.strip().rstrip(",")
                if not line or "…" in line or line in "{}[]":
                    continue
                check(line in output, f"  output shows {line[:80]!r}")
                missing += line not in output
            if missing:
                print(f"--- output of {first}\n{output}---")


def run_python_examples(path):
    """Runs every ```python block of `path` with TROVE_ADDR set, from the top directory."""
    text = open(path, encoding="utf-8").read()
    blocks = [body for lang, body in re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S) if lang == "python"]
    check(blocks, f"{path} has Python examples")
    for body in blocks:
        env = dict(os.environ, TROVE_ADDR=ADDR)
        result = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True, timeout=120, env=env)
        output = result.stdout + result.stderr
        check(result.returncode == 0, f"{path} Python example runs\n{output if result.returncode else ''}")


def grpcio_checks():
    channel = grpc.insecure_channel(ADDR)
    wait_serving(channel)
    health = health_pb2_grpc.HealthStub(channel)
    for service in ["", "trove.v1.CollectionService", "trove.v1.DocumentService", "trove.v1.SearchService"]:
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
        check(status == health_pb2.HealthCheckResponse.SERVING, f"health {service!r} is SERVING")

    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    for name in ["trove.v1.CollectionService", "trove.v1.DocumentService", "trove.v1.SearchService", "grpc.health.v1.Health"]:
        check(name in services, f"reflection lists {name}")
    pool = descriptor_pool.DescriptorPool(database)
    for service_name in ["trove.v1.CollectionService", "trove.v1.DocumentService", "trove.v1.SearchService"]:
        service = pool.FindServiceByName(service_name)
        for method in service.methods:
            check(method.input_type is not None and method.output_type is not None, f"reflection resolves {method.full_name}")
    check(pool.FindMessageTypeByName("google.rpc.BadRequest") is not None, "reflection resolves google.rpc.BadRequest")

    request_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("trove.v1.SearchRequest"))
    response_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("trove.v1.SearchResponse"))
    search = channel.unary_unary(
        "/trove.v1.SearchService/Search",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    response = search(request_class(collection="news", query="taliban", page_size=5), timeout=10)
    check(response.total_size == 1 and response.hits[0].id == "000_d1f7c310efad4f4c", "grpcio Search finds the seed")

    raw = channel.unary_unary("/trove.v1.SearchService/Search")
    try:
        raw(b"\x0a\x10c", timeout=10)
        check(False, "undecodable request is refused")
    except grpc.RpcError as err:
        check(err.code() == grpc.StatusCode.INVALID_ARGUMENT, f"undecodable request is INVALID_ARGUMENT (got {err.code()})")

    try:
        search(request_class(collection="nope"), timeout=10)
        check(False, "unknown collection is refused")
    except grpc.RpcError as err:
        check(err.code() == grpc.StatusCode.NOT_FOUND, f"unknown collection is NOT_FOUND (got {err.code()})")


def main():
    started = time.time()
    grpcio_checks()
    run_doc_examples("README.md")
    run_doc_examples("docs/QUERY.md")
    run_python_examples("docs/SERVICE.md")
    secure_port, secure_dir = sys.argv[2], sys.argv[3]
    channel = grpc.secure_channel(
        f"localhost:{secure_port}",
        grpc.ssl_channel_credentials(open(f"{secure_dir}/ca.pem", "rb").read()),
    )
    wait_serving(channel)
    run_doc_examples("docs/SECURITY.md", ("localhost:50052", f"localhost:{secure_port}"), cwd=secure_dir)
    print(f"interop: {passed} passed, {failures} failed in {time.time() - started:.1f}s")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "prepare-secure":
        prepare_secure(sys.argv[2])
    else:
        main()
