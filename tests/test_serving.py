"""How the web app shares its GPU: the face models load outside the GPU slot, and on ZeroGPU the call
that runs the models asks for a GPU sized to the request. Through the HTTP API, with random weights."""

from __future__ import annotations

import pickle
import threading
import time

import gradio as gr
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image, ImageDraw

from fineface_ui.faces.embedder import FaceEmbedder
from fineface_ui.settings import GenerationSettings
from fineface_ui.standins.tiny_face_models import write_model_pack
from fineface_ui.studio import Studio
from fineface_ui.web import zero_gpu
from tests.app_fixtures import blank_photo, running_app

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


def test_text_renders_go_on_while_the_face_pipeline_loads_outside_the_gpu_slot(sd21_pipe, identity_pipe, tmp_path,
                                                                               generate):
    write_model_pack(tmp_path / "faces")
    loading = threading.Event()

    def slow_identity_pipeline():  # a download of several GB, held until the test lets it finish
        assert loading.wait(60)
        return identity_pipe

    studio = Studio(lambda: sd21_pipe, slow_identity_pipeline, lambda: FaceEmbedder(root=tmp_path / "faces"))
    with running_app(studio) as url:
        client = Client(url, verbose=False)
        with pytest.raises(AppError, match="face models are still loading"):
            generate(client, photos=[face_photo(tmp_path / "face.png")])
        _, text_only = generate(client, seed=3)  # answered while the face pipeline is still loading
        assert text_only["pipeline"] == "sd21" and not studio.is_loaded("identity")

        loading.set()
        for _ in range(600):
            if studio.is_loaded("identity"):
                break
            time.sleep(0.05)
        _, with_face = generate(client, photos=[face_photo(tmp_path / "face.png")])
    assert with_face["pipeline"] == "sd15-identity" and with_face["faces"] == 1


def test_a_failed_background_load_reaches_the_next_request_as_its_message(sd21_pipe, tmp_path):
    from fineface_ui.errors import DownloadError

    def gated():
        raise DownloadError("h94/IP-Adapter-FaceID is gated: accept its licence ...")

    studio = Studio(lambda: sd21_pipe, gated, lambda: FaceEmbedder(root=tmp_path))
    studio.start_loading("identity")
    with pytest.raises(DownloadError, match="is gated"):
        for _ in range(500):
            studio.ready("identity")  # raises once the background load has failed
            time.sleep(0.01)
    assert studio.ready("identity") is False  # told once; the next face request tries again


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
