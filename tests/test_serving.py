"""How the web app shares its GPU: the face models load outside the GPU slot, and on ZeroGPU the call
that runs the models asks for a GPU sized to the request. Through the HTTP API, with random weights."""

from __future__ import annotations

import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image, ImageDraw

from fineface_ui.aus import AU_NAMES
from fineface_ui.edit_settings import EditSettings
from fineface_ui.faces.embedder import FaceEmbedder
from fineface_ui.settings import SETTINGS, GenerationSettings
from fineface_ui.standins.tiny_face_models import write_model_pack
from fineface_ui.studio import Studio
from fineface_ui.web import handlers, zero_gpu
from fineface_ui.web.rendering import Backend
from fineface_ui.web.session import Session
from fineface_ui.web.ui import build_ui
from tests.app_fixtures import blank_photo, face_picture, running_app

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # skimage deprecation inside insightface


def face_photo(path):
    photo = Image.new("RGB", (320, 320), (30, 30, 30))
    ImageDraw.Draw(photo).rectangle((100, 90, 220, 230), fill=(235, 220, 200))  # a face to the tiny detector
    photo.save(path)
    return handle_file(str(path))


@pytest.fixture
def generate(fast):
    """/generate with the fast settings and the prompt "a face", plus the given values."""
    def call(client: Client, **values):
        return client.predict(**{"prompt": "a face", **fast, **values}, api_name="/generate")
    return call


def test_a_face_call_waits_for_the_face_pipeline_while_text_calls_render_then_renders_with_the_face(
        sd21_pipe, identity_pipe, random_studio, tmp_path, generate):
    write_model_pack(tmp_path / "faces")
    asked, loaded = threading.Event(), threading.Event()

    def slow_identity_pipeline():  # a download of several GB, held until the test lets it finish
        asked.set()
        assert loaded.wait(60)
        return identity_pipe

    studio = Studio(lambda: sd21_pipe, slow_identity_pipeline, lambda: FaceEmbedder(root=tmp_path / "faces"),
                    random_studio.au_reader)
    with running_app(studio) as url, ThreadPoolExecutor(1) as pool:
        face_call = pool.submit(generate, Client(url, verbose=False), photos=[face_photo(tmp_path / "face.png")])
        assert asked.wait(30)
        _, text_only = generate(Client(url, verbose=False), seed=3)  # the face call's wait holds up no one
        assert text_only["pipeline"] == "sd21" and not face_call.done()
        loaded.set()
        _, with_face = face_call.result(timeout=120)
    assert with_face["pipeline"] == "sd15-identity" and with_face["faces"] == 1


def test_every_page_render_with_photos_first_waits_for_the_face_models_outside_the_gpu_slot(random_studio):
    demo = build_ui(random_studio)
    photos = next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "face-photos")
    renders = [fn for fn in demo.fns.values() if fn.concurrency_id in ("gpu", "animation") and photos in fn.inputs]
    assert {fn.fn.__name__ for fn in renders} == {"render", "render_sweep", "render_animation", "preview_motion",
                                                  "preview"}
    for fn in renders:
        if fn.fn.__name__ == "preview":  # a drag's preview does not wait: the render on release does
            continue
        first = demo.fns[fn.trigger_after]
        assert fn.trigger_only_on_success and first.fn.__name__ == "await_face_models"
        assert first.concurrency_id != "gpu" and photos in first.inputs


def test_the_wait_loads_the_face_models_only_for_photos_and_a_drag_never_waits(sd21_pipe, identity_pipe, random_studio,
                                                                              tmp_path):
    write_model_pack(tmp_path / "faces")
    loaded = []

    def loader(name, model):
        return lambda: loaded.append(name) or model

    studio = Studio(lambda: sd21_pipe, loader("identity", identity_pipe),
                    loader("faces", FaceEmbedder(root=tmp_path / "faces")), random_studio.au_reader)
    backend, photo = Backend(studio), face_photo(tmp_path / "face.png")["path"]
    values = {**{s.name: s.default for s in SETTINGS}, **dict.fromkeys(AU_NAMES, 0.0), "prompt": "a face"}
    assert handlers.preview(backend, Session(), [photo], **values) == gr.skip() and loaded == []
    handlers.await_face_models(backend, None)
    assert loaded == []
    handlers.await_face_models(backend, [photo])
    assert sorted(loaded) == ["faces", "identity"] and backend.face_models_loaded()


def test_the_real_loader_finds_the_face_pack_in_the_weights_folder(tmp_path, monkeypatch):
    from fineface_ui.hub import weights

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(weights, "WEIGHTS_DIR", weights.Path("weights"))
    write_model_pack(tmp_path / "weights" / "insightface")  # where `fineface-ui download` unpacks it
    embedder = Studio.from_pretrained(device="cpu").face_embedder()
    assert embedder.model_dir == (tmp_path / "weights" / "insightface" / "models" / "buffalo_l").resolve()


class StandInSpaces:
    """The part of the `spaces` package the app uses, GPU(duration=...), behaving as ZeroGPU does:
    the call's arguments and result travel to and from a worker by pickle, and of its exceptions only
    a gr.Error keeps its message."""

    def __init__(self) -> None:
        self.requested: list[int] = []

    def GPU(self, duration):  # noqa: N802 (the package's name)
        def wrap(function):
            def on_gpu(*args, **kwargs):
                self.requested.append(duration(*args, **kwargs))
                args, kwargs = pickle.loads(pickle.dumps((args, kwargs)))
                try:
                    result = function(*args, **kwargs)
                except gr.Error:
                    raise
                except Exception as error:
                    raise gr.Error(f"ZeroGPU worker error: {type(error).__name__}") from None
                return pickle.loads(pickle.dumps(result))
            return on_gpu
        return wrap


def test_on_zero_gpu_each_model_call_asks_for_seconds_sized_to_its_request(random_studio, fast, generate, tmp_path,
                                                                            monkeypatch):
    spaces = StandInSpaces()
    monkeypatch.setattr(zero_gpu, "spaces", spaces)
    with running_app(random_studio) as url:  # the app wraps the call when it is built
        client = Client(url, verbose=False)
        path, metadata = generate(client, aus="AU12=2", seed=1)
        frames, _, _ = client.predict(prompt="a face", au="AU12", start=0, stop=4, frames=5, **fast,
                                      api_name="/sweep")
        with pytest.raises(AppError, match="No face was found in photo 1"):  # the worker's message survives
            generate(client, photos=[handle_file(str(blank_photo(tmp_path / "wall.png")))])
        calls = len(spaces.requested)
        [reading] = client.predict(photos=[handle_file(face_picture(tmp_path / "me.png"))], api_name="/read_aus")
        reading_calls = len(spaces.requested)
        edited, _ = client.predict(photo=handle_file(face_picture(tmp_path / "me.png")), aus="AU12=4",
                                   num_inference_steps=2, api_name="/edit")  # the photo travels to the worker
    assert len(reading["aus"]) == 12 and reading_calls == calls  # reading asks for no GPU
    assert spaces.requested[reading_calls:] == [zero_gpu.edit_seconds(None, None, EditSettings.create({}, None,
                                                                                                  num_inference_steps=2))]
    assert Image.open(edited).size == (480, 400)
    assert metadata["aus"][0]["AU12"] == 2 and len(frames) == 5  # generation itself is unchanged
    one = zero_gpu.estimated_seconds(None, GenerationSettings.create("a face", None, **fast))
    five = zero_gpu.estimated_seconds(None, GenerationSettings.create("a face", [{}] * 5, **fast))
    assert spaces.requested[:2] == [one, five]

    def seconds(aus, **options):
        return zero_gpu.estimated_seconds(None, GenerationSettings.create("a face", aus, **options))

    image = seconds(None, num_inference_steps=25, height=512, width=512)
    assert image < seconds([{}] * 8, num_inference_steps=25, height=512, width=512)  # a sweep of 8 frames
    assert image < seconds(None, num_inference_steps=50, height=1024, width=1024)
    assert seconds([{}] * 32, num_inference_steps=150, height=1024, width=1024) == zero_gpu.MAX_SECONDS


def test_without_the_spaces_package_nothing_is_wrapped(monkeypatch):
    monkeypatch.setattr(zero_gpu, "spaces", None)
    assert zero_gpu.on_gpu(Studio.generate) is Studio.generate


def test_stop_cancels_every_render_the_page_can_start(random_studio):
    # Each click that ends in a render is an event chain of its own; Stop drops the queued ones of every chain.
    demo = build_ui(random_studio)
    [stop] = [fn for fn in demo.fns.values() if fn.fn is not None and fn.fn.__name__ == "request_stop"]
    [cancel] = [fn for fn in demo.fns.values() if fn.is_cancel_function and fn.targets == stop.targets]
    gpu = {fn._id for fn in demo.fns.values() if fn.concurrency_id == "gpu" and fn.fn.__name__ != "preview"}
    renders = {fn._id for fn in demo.fns.values() if fn.fn is not None and fn.fn.__name__ == "render"}
    assert len(renders) == 7 and renders <= gpu <= set(cancel.cancels)
