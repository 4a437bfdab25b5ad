"""HTTP robustness, auth, Azure and async clients against the local backend.

Most tests run in process (``local_server``); those about sockets, uvicorn and connection
handling use ``served``, a real server on a loopback port.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NoReturn

import openai
import pytest

from finetune_kit.local import Faults, LinearTrainer, LocalServer, in_process_http_client

from .helpers import SYSTEM, small_training_file, upload

if TYPE_CHECKING:
    from collections.abc import Iterator

    from finetune_kit.local import ManualClock


@pytest.fixture
def served() -> Iterator[LocalServer]:
    """A local backend served by uvicorn on a loopback port."""
    with LocalServer(speed=100.0) as server:
        yield server


def _raw(
    server: LocalServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    if server.in_process:
        with in_process_http_client(server.app) as http_client:
            got = http_client.request(method, path, content=body, headers=headers)
            return got.status_code, got.json(), dict(got.headers)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        payload = json.loads(response.read())
        return response.status, payload, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def _is_error(payload: dict[str, Any]) -> bool:
    error = payload.get("error")
    return isinstance(error, dict) and set(error) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("GET", "/v1/nope", None, {}, 404),
        ("GET", "/elsewhere", None, {}, 404),
        ("PUT", "/v1/files", b"", {}, 405),
        ("POST", "/v1/fine_tuning/jobs", b"{not json", {"content-type": "application/json"}, 400),
        ("POST", "/v1/fine_tuning/jobs", b"[1, 2]", {"content-type": "application/json"}, 400),
        ("POST", "/v1/chat/completions", b"\xff\xfe", {"content-type": "application/json"}, 400),
        ("POST", "/v1/files", b"garbage", {"content-type": "multipart/form-data"}, 400),
        (
            "POST",
            "/v1/files",
            b"--xx\r\nbroken",
            {"content-type": "multipart/form-data; boundary=xx"},
            400,
        ),
        ("POST", "/v1/files", b"{}", {"content-type": "application/json"}, 400),
        ("GET", "/v1/files/file-missing", None, {}, 404),
        ("GET", "/v1/fine_tuning/jobs?limit=abc", None, {}, 400),
        ("GET", "/v1/fine_tuning/jobs/ftjob-x/events", None, {}, 404),
        ("GET", "/v1/models/%ZZ", None, {}, 404),
        ("POST", "/v1/fine_tuning/jobs", b"{}", {"content-type": "application/json"}, 400),
    ],
)
def test_malformed_requests_get_4xx_json_and_the_server_stays_up(
    local_server: LocalServer,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    status: int,
) -> None:
    got, payload, response_headers = _raw(local_server, method, path, body, headers)
    assert got == status
    assert _is_error(payload)
    assert response_headers["x-request-id"].startswith("req_")
    assert local_server.client(max_retries=0).models.list().data


_JSON = {"content-type": "application/json"}
_CHAT = json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode()


@pytest.mark.parametrize(
    ("method", "path", "body", "error"),
    [
        ("GET", "/v1/files/file-x", None, ("No such File object: file-x", "file_id", None)),
        (
            "POST",
            "/v1/uploads/upload_x/cancel",
            None,
            ("No such Upload object: upload_x", "upload_id", None),
        ),
        ("GET", "/v1/batches/batch_x", None, ("No such Batch object: batch_x", "batch_id", None)),
        (  # the request's own parameter names the missing file
            "POST",
            "/v1/batches",
            b'{"input_file_id": "file-x", "endpoint": "/v1/chat/completions"}',
            ("No such File object: file-x", "input_file_id", None),
        ),
        (
            "GET",
            "/v1/fine_tuning/jobs/ftjob-x/checkpoints",
            None,
            (
                "Could not find fine-tuning job ftjob-x.",
                "fine_tuning_job_id",
                "fine_tune_not_found",
            ),
        ),
        (
            "GET",
            "/v1/models/my-model",
            None,
            (
                "The model `my-model` does not exist or you do not have access to it.",
                "model",
                "model_not_found",
            ),
        ),
        (
            "POST",
            "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21",
            _CHAT,
            (
                "The API deployment my-deployment for this resource does not exist. If you "
                "created the deployment within the last 5 minutes, please wait a moment and "
                "try again.",
                None,
                "DeploymentNotFound",
            ),
        ),
    ],
    ids=["file", "upload", "batch", "batch-input", "job", "model", "deployment"],
)
def test_an_unknown_object_is_a_404_in_the_services_words(
    local_server: LocalServer,
    method: str,
    path: str,
    body: bytes | None,
    error: tuple[str, str | None, str | None],
) -> None:
    status, payload, _ = _raw(local_server, method, path, body, _JSON)
    assert status == 404
    message, param, code = error
    assert payload["error"] == {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    }


@pytest.mark.parametrize("in_process", [True, False])
def test_oversized_body_is_413_and_the_server_stays_up(in_process: bool) -> None:
    with LocalServer(max_body_bytes=1000, in_process=in_process) as server:
        client = server.client(max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            upload(client, b"x" * 5000)
        assert info.value.status_code == 413
        assert client.models.list().data


def test_oversized_chunked_body_is_413() -> None:
    with LocalServer(max_body_bytes=100) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.putrequest("POST", "/v1/fine_tuning/jobs")
        conn.putheader("content-type", "application/json")
        conn.putheader("transfer-encoding", "chunked")
        conn.endheaders()
        for _ in range(5):
            conn.send(b"28\r\n" + b" " * 40 + b"\r\n")
        conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        assert response.status == 413
        assert _is_error(json.loads(response.read()))
        conn.close()


def test_half_sent_body_does_not_hang_the_server(served: LocalServer) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nab")
    assert served.client(max_retries=0).models.list().data


def test_chunked_request_body(served: LocalServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    conn.putrequest("POST", "/v1/chat/completions")
    conn.putheader("content-type", "application/json")
    conn.putheader("transfer-encoding", "chunked")
    conn.endheaders()
    data = body.encode()
    for start in range(0, len(data), 10):
        chunk = data[start : start + 10]
        conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    conn.send(b"0\r\n\r\n")
    response = conn.getresponse()
    assert response.status == 200
    assert json.loads(response.read())["object"] == "chat.completion"
    conn.close()


@pytest.mark.parametrize("in_process", [True, False])
def test_api_key_required(in_process: bool) -> None:
    with LocalServer(api_key="sk-local-secret", in_process=in_process) as server:
        wrong = server.client(api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as info:
            wrong.models.list()
        assert info.value.code == "invalid_api_key"
        assert "sk-wrong" not in str(info.value)
        assert "sk-local-secret" not in str(info.value)
        status, payload, _ = _raw(server, "GET", "/v1/models")
        assert status == 401
        assert _is_error(payload)
        assert server.client(max_retries=0).models.list().data
        assert server.azure_client(max_retries=0).models.list().data  # api-key header
        status, _, _ = _raw(server, "GET", "/v1/models", headers={"api-key": "sk-local-secret"})
        assert status == 200
        assert "sk-local-secret" not in repr(server)


@pytest.mark.parametrize(
    "factory", ["client", "async_client", "azure_client", "async_azure_client"]
)
async def test_client_factories_share_their_options(factory: str) -> None:
    with LocalServer(api_key="sk-local-secret", in_process=True) as server:
        made = getattr(server, factory)()
        assert (made.api_key, made.max_retries, made.timeout) == ("sk-local-secret", 2, 60.0)
        mine = getattr(server, factory)(api_key="sk-mine", max_retries=0, timeout=5.0)
        assert (mine.api_key, mine.max_retries, mine.timeout) == ("sk-mine", 0, 5.0)
        with pytest.raises(TypeError, match=rf"^LocalServer\.{factory}\(\) got .* 'retries'"):
            getattr(server, factory)(retries=0)
        if factory.startswith("async"):
            await made.close()
            await mine.close()


def test_non_loopback_needs_a_key() -> None:
    with pytest.raises(ValueError, match="api_key"):
        LocalServer(host="0.0.0.0")
    LocalServer(host="0.0.0.0", api_key="k")  # allowed (not started)
    LocalServer(host="localhost")
    LocalServer(host="::1")
    with pytest.raises(ValueError, match="speed"):
        LocalServer(speed=0)


def test_azure_client(local_server: LocalServer) -> None:
    azure = local_server.azure_client(max_retries=0)
    file_id = azure.files.create(file=("t.jsonl", small_training_file(12)), purpose="fine-tune").id
    job = azure.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
    assert azure.fine_tuning.jobs.retrieve(job.id).id == job.id
    reply = azure.chat.completions.create(
        model="gpt-4o-mini",  # the deployment name, sent in the path
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}],
        temperature=0,
    )
    assert reply.model == "gpt-4o-mini"
    assert azure.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    status, payload, _ = _raw(
        local_server,
        "POST",
        "/openai/deployments/gpt-4.1-mini/chat/completions?api-version=2024-10-21",
        json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(),
        {"content-type": "application/json"},
    )
    assert status == 200
    assert payload["model"] == "gpt-4.1-mini"
    with in_process_http_client(local_server.app) as http_client:
        v1 = openai.OpenAI(
            api_key="k",
            base_url=local_server.root_url + "/openai/v1",
            max_retries=0,
            http_client=http_client,
        )  # Azure's v1 API shape
        assert v1.files.retrieve(file_id).id == file_id


async def test_async_client(local_server: LocalServer) -> None:
    client = local_server.async_client(max_retries=0)
    created = await client.files.create(
        file=("t.jsonl", small_training_file(12)), purpose="fine-tune"
    )
    job = await client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=created.id)
    assert (await client.fine_tuning.jobs.retrieve(job.id)).id == job.id
    reply = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content
    await client.close()


def test_start_and_stop_closes_connections(clock: ManualClock) -> None:
    server = LocalServer(clock=clock).start()
    assert server.start() is server  # idempotent
    own = openai.OpenAI(api_key="k", base_url=server.url, max_retries=0)
    handed_out = server.client(max_retries=0)
    assert own.models.list().data  # leaves a kept-alive connection in own's pool
    assert handed_out.models.list().data
    server.stop()
    server.stop()  # idempotent
    assert not server.running
    # The kept-alive connection was closed: no answer from a stopped server's state.
    with pytest.raises(openai.APIConnectionError):
        own.models.list()
    own.close()
    assert handed_out.is_closed()  # clients made by the server close with it


def test_stop_lets_a_request_in_flight_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    # The server stops at once when idle, but a reply being made is still sent in full.
    arrived = threading.Event()
    pick = Faults.pick

    def seen(self: Faults, method: str, path: str) -> Any:
        rule = pick(self, method, path)
        arrived.set()
        return rule

    monkeypatch.setattr(Faults, "pick", seen)
    server = LocalServer(faults=Faults.parse("slow@GET:/models,first=1,delay=0.2")).start()
    own = openai.OpenAI(api_key="k", base_url=server.url, max_retries=0)
    with own, ThreadPoolExecutor(1) as pool:
        reply = pool.submit(own.models.list)
        assert arrived.wait(5)  # the request is in the server, sleeping in the slow fault
        server.stop()
        assert reply.result(timeout=5).data
        with pytest.raises(openai.APIConnectionError):
            own.models.list()


def test_garbage_request_line_gets_400(served: LocalServer) -> None:
    # Not even HTTP: uvicorn answers 400 itself (the app never sees the request).
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(b"THIS IS NOT HTTP/1.1 AT ALL\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    assert raw.startswith(b"HTTP/1.1 400")
    assert served.client(max_retries=0).models.list().data


def test_head_and_options(served: LocalServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
    conn.request("HEAD", "/v1/models")
    response = conn.getresponse()
    assert response.status == 200  # HEAD of a GET route: headers only
    assert response.read() == b""
    conn.close()
    status, payload, _ = _raw(served, "OPTIONS", "/v1/files")
    assert status == 405
    assert _is_error(payload)


class _BrokenTrainer(LinearTrainer):
    def train(self, *_args: object, **_kwargs: object) -> NoReturn:
        raise RuntimeError("trainer bug")


def test_an_internal_error_fails_the_job_not_the_server(clock: ManualClock) -> None:
    with LocalServer(clock=clock, in_process=True, trainer=_BrokenTrainer()) as server:
        client = server.client(max_retries=0)
        job = client.fine_tuning.jobs.create(
            model="gpt-4o-mini", training_file=upload(client, small_training_file(12))
        )
        clock.advance(1)
        job = client.fine_tuning.jobs.retrieve(job.id)
        assert job.status == "failed"
        assert job.error is not None
        assert job.error.code == "internal_error"
        assert client.models.list().data


async def test_concurrent_requests(local_server: LocalServer) -> None:
    import asyncio

    client = local_server.async_client(max_retries=0)
    uploads = [
        client.files.create(file=(f"f{i}.jsonl", b"{}\n"), purpose="user_data") for i in range(10)
    ]
    chats = [
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"Answer with one of: a, b. Case {i}"}],
        )
        for i in range(30)
    ]
    files, replies = await asyncio.gather(asyncio.gather(*uploads), asyncio.gather(*chats))
    assert len({f.id for f in files} | {r.id for r in replies}) == 40
    assert len((await client.files.list()).data) == 10
    await client.close()


def test_ipv6_loopback_and_localhost() -> None:
    with LocalServer(host="localhost") as server:
        assert server.url.startswith("http://localhost:")
        assert server.client(max_retries=0).models.list().data
    try:
        server = LocalServer(host="::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with server:
        assert server.url.startswith("http://[::1]:")
        assert server.client(max_retries=0).models.list().data


def test_connections_are_accepted_with_nodelay(served: LocalServer) -> None:
    # Inherited by accepted connections: without it every kept-alive response waits ~40 ms
    # for Nagle's algorithm and the client's delayed ACK.
    listening = served._socket
    assert listening is not None
    assert listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
