"""Requests that Gradio refuses before any of the app's code runs, and what the server keeps per session.

Through raw HTTP against the app served with random weights: a hostile client sends what it likes, and
gradio_client would fill in or upload what these requests lack.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from gradio.utils import get_upload_folder

from fineface_ui.settings import SCHEDULERS
from fineface_ui.studio import Studio
from fineface_ui.web import server
from tests.app_fixtures import blank_photo, free_port, running_app

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # skimage deprecation inside insightface

REPO = str(Path(__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def app_url(random_studio):
    with running_app(random_studio) as url:
        yield url.rstrip("/")


def parameters(url: str, endpoint: str) -> list[dict]:
    return httpx.get(f"{url}/gradio_api/info").json()["named_endpoints"][f"/{endpoint}"]["parameters"]


def values(url: str, endpoint: str, **given) -> list:
    """The endpoint's values in order: `given` ones, the others at their defaults."""
    given = {"prompt": "a face", "num_inference_steps": 1, "width": 256, "height": 256, **given}
    return [given.get(p["parameter_name"], p["parameter_default"]) for p in parameters(url, endpoint)]


def call(url: str, endpoint: str, data: list) -> tuple[str, dict]:
    """POST /gradio_api/call/<endpoint>, then read its event stream: the final event's name and data."""
    event_id = httpx.post(f"{url}/gradio_api/call/{endpoint}", json={"data": data}).raise_for_status().json()["event_id"]
    event, payload = "", None
    with httpx.stream("GET", f"{url}/gradio_api/call/{endpoint}/{event_id}", timeout=60) as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event in ("complete", "error"):
                payload = json.loads(line.removeprefix("data: "))
                break
    return event, payload


def join_queue(url: str, api_name: str, data: list) -> dict:
    """The page's own way in: /gradio_api/queue/join with an fn_index, then the session's message stream;
    the completion message."""
    config = httpx.get(f"{url}/config").json()
    fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)
    session = uuid.uuid4().hex
    httpx.post(f"{url}/gradio_api/queue/join",
               json={"data": data, "fn_index": fn_index, "session_hash": session}).raise_for_status()
    with httpx.stream("GET", f"{url}/gradio_api/queue/data", params={"session_hash": session}, timeout=60) as stream:
        for line in stream.iter_lines():
            message = json.loads(line.removeprefix("data: ")) if line.startswith("data: ") else {}
            if message.get("msg") == "process_completed":
                return message
    raise AssertionError("the queue's stream ended without a completion message")


def assert_readable_refusal(message: object, *expected: str) -> None:
    """A sentence a person can act on, naming none of the server's folders."""
    assert isinstance(message, str) and len(message) > 20, message
    for folder in (tempfile.gettempdir(), get_upload_folder(), REPO, os.getcwd()):
        assert folder not in message
    for part in expected:
        assert part in message


def file_payload(path: str, **extra) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}, **extra}


@pytest.mark.parametrize("path", ["/etc/passwd", "photo.png", "../../photo.png"],
                         ids=["server-file", "relative", "relative-up"])
def test_a_file_the_app_did_not_upload_is_refused_with_a_reason(app_url, path):
    event, payload = call(app_url, "generate", values(app_url, "generate", photos=[file_payload(path)]))
    assert event == "error"
    assert_readable_refusal(payload["error"], "not uploaded to this app", "handle_file")


@pytest.mark.parametrize("endpoint", ["generate", "preview"])
def test_a_bare_server_path_without_gradios_file_marker_is_refused_unread(app_url, endpoint):
    # Gradio checks a file against its uploads only when it carries "meta"; the app checks the rest.
    event, payload = call(app_url, endpoint, values(app_url, endpoint, photos=[{"path": "/etc/passwd"}]))
    assert event == "error"
    assert_readable_refusal(payload["error"], "uploaded to this app", "handle_file")
    assert "/etc/passwd" not in payload["error"] and "identify" not in payload["error"]


def test_a_file_url_that_cannot_be_fetched_is_refused_naming_the_url(app_url):
    url = "http://127.0.0.1:1/photo.png"  # Gradio refuses to fetch from the server's own network
    event, payload = call(app_url, "generate", values(app_url, "generate", photos=[file_payload(url, url=url)]))
    assert event == "error"
    assert_readable_refusal(payload["error"], f"Could not fetch the file at {url}")


@pytest.mark.parametrize("endpoint", ["generate", "sweep"])
def test_too_few_values_are_refused_saying_how_many_are_wanted(app_url, endpoint):
    wanted = len(parameters(app_url, endpoint))
    event, payload = call(app_url, endpoint, ["a face"])
    assert event == "error"
    assert_readable_refusal(payload["error"], f"{endpoint} takes {wanted} values", "has 1")


def test_too_few_values_through_the_queue_with_an_fn_index_are_refused_too(app_url):
    message = join_queue(app_url, "generate", ["a face"])
    assert message["success"] is False
    assert_readable_refusal(message["output"]["error"], "generate takes", "has 1")


@pytest.mark.parametrize("endpoint", ["generate", "preview"])
def test_a_null_scheduler_is_refused_naming_the_schedulers(app_url, endpoint):
    event, payload = call(app_url, endpoint, values(app_url, endpoint, scheduler=None))
    assert event == "error"
    assert_readable_refusal(payload["error"], "scheduler", *SCHEDULERS)


@pytest.mark.parametrize("name", ["no-such-endpoint", "generate2"])
def test_a_call_to_an_unknown_endpoint_is_a_404_listing_the_endpoints(app_url, name):
    answer = httpx.post(f"{app_url}/gradio_api/call/{name}", json={"data": []})
    assert answer.status_code == 404
    assert_readable_refusal(answer.json()["error"], f"/{name}", "/generate, /preview, /read_aus, /sweep")


def test_after_a_refused_request_the_next_one_renders(app_url):
    call(app_url, "generate", ["a face"])
    event, payload = call(app_url, "generate", values(app_url, "generate"))
    assert event == "complete" and payload[1]["prompt"] == "a face"


def test_the_server_keeps_per_session_state_for_at_most_its_session_capacity(random_studio, monkeypatch):
    # Each call without a session is a session of its own, and Gradio keeps a copy of the page's
    # configuration per session (about 0.2 MB) until it drops the least recently used beyond the capacity.
    monkeypatch.setattr(server, "SESSIONS_KEPT", 4)
    demo = server.create_app(random_studio)
    server.launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        url = demo.local_url.rstrip("/")
        for _ in range(10):
            call(url, "generate", values(url, "generate", aus="AU99=1"))  # refused by the app: fast, yet a session
        assert len(demo.server_app.state_holder.session_data) <= 4
    finally:
        demo.close()


def upload(url: str, path: Path) -> str:
    """POST /gradio_api/upload as a client does: the server's path of the uploaded copy."""
    with path.open("rb") as file:
        answer = httpx.post(f"{url}/gradio_api/upload", files={"files": (path.name, file, "image/png")})
    return answer.raise_for_status().json()[0]


@pytest.mark.parametrize(("endpoint", "aus", "reason"), [
    ("generate", "", "No face was found"), ("sweep", "", "No face was found"),
    ("generate", "AU99=1", "AU99"), ("sweep", "AU99=1", "AU99")])  # refused before the photo is read
def test_a_photo_uploaded_for_a_call_cannot_be_fetched_once_the_call_is_over(app_url, endpoint, aus, reason, tmp_path):
    path = upload(app_url, blank_photo(tmp_path / "wall.png"))
    assert httpx.get(f"{app_url}/gradio_api/file={path}").status_code == 200  # Gradio serves its uploads
    event, payload = call(app_url, endpoint, values(app_url, endpoint, aus=aus, photos=[file_payload(path)], frames=2))
    assert event == "error" and reason in payload["error"]
    assert httpx.get(f"{app_url}/gradio_api/file={path}").status_code in (403, 404)  # gone, not served


class BusyPipeline:
    """The text pipeline of a GPU busy with a long render: every render waits until `go` is set."""

    def __init__(self, pipe) -> None:
        self.pipe, self.go = pipe, threading.Event()

    def generate(self, *args, **kwargs):
        assert self.go.wait(60)
        return self.pipe.generate(*args, **kwargs)


@pytest.fixture
def busy_app(random_studio):
    """The app on a busy GPU: (its URL, the pipeline to release)."""
    busy = BusyPipeline(random_studio.text_pipeline())
    studio = Studio(lambda: busy, random_studio.identity_pipeline, random_studio.face_embedder,
                    random_studio.au_reader)
    with running_app(studio) as url:
        yield url.rstrip("/"), busy
        busy.go.set()


def post_call(url: str, data: list) -> httpx.Response:
    return httpx.post(f"{url}/gradio_api/call/generate", json={"data": data}, timeout=30)


def outcome(url: str, event_id: str) -> str:
    with httpx.stream("GET", f"{url}/gradio_api/call/generate/{event_id}", timeout=60) as stream:
        return next(line.removeprefix("event: ") for line in stream.iter_lines()
                    if line.startswith("event: ") and line != "event: heartbeat" and "generating" not in line)


def test_twenty_clients_with_a_request_each_in_flight_are_all_served(busy_app):
    url, busy = busy_app
    data = [values(url, "generate", seed=seed) for seed in range(20)]
    with ThreadPoolExecutor(20) as clients:
        answers = list(clients.map(lambda values: post_call(url, values), data))
        assert [answer.status_code for answer in answers] == [200] * 20
        busy.go.set()
        events = list(clients.map(lambda answer: outcome(url, answer.json()["event_id"]), answers))
    assert events == ["complete"] * 20


def test_only_a_burst_beyond_the_queues_bound_is_refused_with_a_reason(random_studio, monkeypatch):
    monkeypatch.setattr(server, "QUEUE_SIZE", 3)
    busy = BusyPipeline(random_studio.text_pipeline())
    studio = Studio(lambda: busy, random_studio.identity_pipeline, random_studio.face_embedder,
                    random_studio.au_reader)
    with running_app(studio) as url:
        data = values(url.rstrip("/"), "generate")
        answers = [post_call(url.rstrip("/"), data) for _ in range(server.QUEUE_SIZE + 8)]
        busy.go.set()
    codes = [answer.status_code for answer in answers]
    assert codes[:server.QUEUE_SIZE] == [200] * server.QUEUE_SIZE and 503 in codes
    refused = answers[codes.index(503)].json()["detail"]
    assert "Queue is full" in refused
