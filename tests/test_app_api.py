"""The HTTP API, through gradio_client, against the app served with random weights."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from fineface_ui.png_info import read_settings, save_png
from fineface_ui.settings import SETTINGS
from tests.app_fixtures import blank_photo, face_picture, running_app

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # skimage deprecation inside insightface


@pytest.fixture(scope="module")
def client(random_studio):
    with running_app(random_studio) as url:
        yield Client(url, verbose=False)


@pytest.fixture
def generate(client, fast):
    def call(**values):
        return client.predict(**{"prompt": "a close-up of a face", **fast, **values}, api_name="/generate")

    return call


def test_only_the_documented_endpoints_are_public(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/generate", "/preview", "/sweep", "/animate", "/upscale", "/read_aus", "/edit"}


@pytest.mark.parametrize("endpoint", ["/generate", "/preview", "/sweep"])
def test_every_setting_is_a_typed_parameter_with_the_default_of_its_spec(client, endpoint):
    parameters = client.view_api(print_info=False, return_format="dict")["named_endpoints"][endpoint]["parameters"]
    by_name = {parameter["parameter_name"]: parameter for parameter in parameters}
    kinds = {int: "integer", float: "number", str: "string"}
    for setting in SETTINGS:
        assert by_name[setting.name]["parameter_default"] == setting.default
        assert by_name[setting.name]["type"]["type"] == kinds[setting.kind]
    assert {"prompt", "aus", "photos"} <= set(by_name)


def test_generate_returns_a_png_carrying_its_settings(generate, pixels):
    path, metadata = generate(aus="AU6=2.5, AU12=5", seed=7)
    assert pixels(path).shape == (256, 256, 3)
    stored = read_settings(path)
    assert stored["seed"] == metadata["seed"] == 7
    assert stored["aus"][0]["AU12"] == 5 and stored["aus"][0]["AU6"] == 2.5


def test_preview_returns_a_small_jpeg_without_settings_of_the_same_size(client, generate, fast):
    preview = client.predict(prompt="a close-up of a face", aus="AU12=3", seed=5, **fast, api_name="/preview")
    png, _ = generate(aus="AU12=3", seed=5)
    with Image.open(preview) as jpeg, Image.open(png) as full:
        assert jpeg.format == "JPEG" and jpeg.size == full.size
        assert not {key for key in jpeg.info if key not in ("jfif", "jfif_version", "jfif_unit", "jfif_density")}
    with pytest.raises(Exception, match="FineFace settings|PNG"):
        read_settings(preview)
    with pytest.raises(AppError, match="/sweep"):
        client.predict(prompt="a face", aus='[{"AU12": 1}, {"AU12": 2}]', **fast, api_name="/preview")


def test_the_same_seed_gives_the_same_pixels_and_another_seed_does_not(generate, pixels):
    first, _ = generate(aus='{"AU12": 3}', seed=11)
    again, _ = generate(aus='{"AU12": 3}', seed=11)
    other, _ = generate(aus='{"AU12": 3}', seed=12)
    assert np.array_equal(pixels(first), pixels(again))
    assert not np.array_equal(pixels(first), pixels(other))


def test_sweep_returns_one_frame_per_step_and_a_looping_gif(client, fast):
    frames, animation, metadata = client.predict(
        prompt="a face", au="AU12", start=0, stop=4, frames=5, aus="AU6=1", **fast, api_name="/sweep"
    )
    assert len(frames) == 5
    assert [aus["AU12"] for aus in metadata["aus"]] == [0, 1, 2, 3, 4]
    assert all(aus["AU6"] == 1 for aus in metadata["aus"])
    with Image.open(animation) as gif:
        assert gif.n_frames == 8  # forward, then back without repeating the ends


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"aus": "AU12=nan"}, "finite"),
        ({"aus": '{"AU12": 1e9}'}, "accepted range"),
        ({"seed": 1e12}, "Seed must be between 0 and 4294967295"),
        ({"aus": "AU99=1"}, "Unknown Action Unit"),
        ({"aus": json.dumps(list(range(13)))}, "Expected 12"),
        ({"width": 100_000}, "Width must be between 256 and 1024"),
        ({"scheduler": "euler"}, "scheduler"),
        ({"scheduler": ["dpm++"]}, r"Unknown scheduler \['dpm\+\+'\]; choose one of dpm\+\+, paper"),
        ({"aus": "AU12=1, AU12=5"}, "AU12 is given twice"),
        ({"aus": '{"AU12": 1, "AU12": 5}'}, "'AU12' is given twice in aus"),
        ({"aus": '{"AU12": 1, "au12": 5}'}, "AU12 is given twice"),
        ({"aus": '{"AU12": true}'}, "AU12 must be a number, got True"),
        ({"seed": True}, "Seed must be a number, got True"),
        ({"seed": "7"}, "Seed must be a number, got '7' \\(numbers are sent as numbers"),
        ({"aus": '\n{"AU12": 1,, "AU6": 2}'}, "aus is not valid JSON: .* at line 2, column 12"),
    ],
    ids=lambda value: repr(value)[:40] if isinstance(value, dict) else "",
)
def test_invalid_values_get_a_readable_error_and_the_next_call_works(generate, pixels, values, message):
    with pytest.raises(AppError, match=message):
        generate(**values)
    path, _ = generate(aus="AU12=1")
    assert pixels(path).shape == (256, 256, 3)


def test_a_sweep_of_too_many_frames_is_refused_before_any_work(client, fast):
    with pytest.raises(AppError, match="frames"):
        client.predict(prompt="a face", au="AU12", frames=1e9, **fast, api_name="/sweep")


def test_a_photo_without_a_face_gets_the_no_face_message(generate, tmp_path):
    photo = blank_photo(tmp_path / "empty_wall.png")
    with pytest.raises(AppError, match="No face was found in photo 1"):
        generate(photos=[handle_file(photo)])


def test_generate_refuses_a_list_of_au_settings_pointing_to_sweep(generate):
    with pytest.raises(AppError, match="/generate renders one image: give one AU setting.*call /sweep"):
        generate(aus=json.dumps([{"AU12": 1}, {"AU12": 2}]))
    with pytest.raises(AppError, match="call /sweep"):
        generate(aus=json.dumps(["AU12=1", "AU12=2"]))


def test_twelve_numbers_in_model_order_are_one_au_setting(generate):
    _, metadata = generate(aus=json.dumps([0, 0, 0, 0, 2.5, 0, 5, 0, 0, 0, 0, 0]))
    assert len(metadata["aus"]) == 1
    assert {name: value for name, value in metadata["aus"][0].items() if value} == {"AU6": 2.5, "AU12": 5}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"au": None}, "An AU name must be text such as 'AU12', got None"),
        ({"frames": "8"}, "frames must be a whole number from 2 to 32, got '8' \\(numbers are sent as numbers"),
        ({"start": True}, "AU12 start must be a number, got True"),
    ],
    ids=["au-null", "frames-text", "start-true"],
)
def test_bad_sweep_values_get_a_readable_error_and_the_next_sweep_works(client, fast, values, message):
    sweep = {"prompt": "a face", "au": "AU12", "frames": 2, **fast}
    with pytest.raises(AppError, match=message):
        client.predict(**{**sweep, **values}, api_name="/sweep")
    frames, _, _ = client.predict(**sweep, api_name="/sweep")
    assert len(frames) == 2


def call_over_http(client, endpoint, **values):
    """The endpoint called with the request as ASCII JSON text, as a hostile client may send it; the
    reply's event stream. (gradio_client cannot send a lone surrogate: it encodes requests as UTF-8.)"""
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"][f"/{endpoint}"]
    data = [values.get(p["parameter_name"], p["parameter_default"]) for p in api["parameters"]]
    url = f"{client.src.rstrip('/')}/gradio_api/call/{endpoint}"
    event = httpx.post(url, content=json.dumps({"data": data}), headers={"Content-Type": "application/json"})
    return httpx.get(f"{url}/{event.json()['event_id']}", timeout=60).text


def test_a_prompt_with_a_lone_surrogate_is_refused_as_not_valid_text(client, fast, generate, pixels):
    reply = call_over_http(client, "generate", prompt="a sm\ud800ile", **fast)
    assert "event: error" in reply and "Prompt is not valid text" in reply
    path, _ = generate(aus="AU12=1")
    assert pixels(path).shape == (256, 256, 3)


def test_read_aus_answers_per_photo_twelve_values_and_the_face_as_the_reader_does(client, random_studio, tmp_path):
    photo = face_picture(tmp_path / "me.png")
    answer = client.predict(photos=[handle_file(photo), handle_file(photo)], api_name="/read_aus")
    [expected] = random_studio.read_aus([photo])
    assert len(answer) == 2 and answer[0] == answer[1]
    assert list(answer[0]["aus"]) == list(expected.aus)
    assert answer[0]["aus"] == pytest.approx(expected.aus, abs=1e-3)
    assert answer[0]["box"] == list(expected.face.box) and answer[0]["faces_found"] == 1


def test_read_aus_names_a_photo_without_a_face_and_refuses_no_photos(client, tmp_path):
    with pytest.raises(AppError, match=r"No face was found in photo 2 \(empty_wall.png\)"):
        client.predict(photos=[handle_file(face_picture(tmp_path / "me.png")),
                               handle_file(blank_photo(tmp_path / "empty_wall.png"))], api_name="/read_aus")
    with pytest.raises(AppError, match="at least one photo"):
        client.predict(photos=[], api_name="/read_aus")


def test_upscale_redraws_a_png_of_this_app_larger_with_its_settings(client, generate, pixels):
    source, made = generate(aus="AU12=4", seed=9, num_inference_steps=4)
    path, metadata = client.predict(image=handle_file(source), scale=2, strength=0.5, api_name="/upscale")
    assert pixels(path).shape == (512, 512, 3)
    assert read_settings(path)["upscale"] == {"scale": 2, "strength": 0.5, "width": 512, "height": 512}
    assert metadata["aus"] == made["aus"] and metadata["seed"] == 9
    with pytest.raises(AppError, match="upscaled already"):
        client.predict(image=handle_file(path), api_name="/upscale")


def test_upscale_refuses_an_image_without_settings_and_a_face_image_without_its_photos(client, tmp_path):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (64, 64)).save(plain)
    with pytest.raises(AppError, match="has no FineFace settings"):
        client.predict(image=handle_file(plain), api_name="/upscale")
    face, _ = client.predict(prompt="a face", aus="AU12=1", num_inference_steps=4, height=256, width=256,
                             photos=[handle_file(face_picture(tmp_path / "me.png"))], api_name="/generate")
    with pytest.raises(AppError, match=r"made from 1 face photo\(s\); 0 were sent"):
        client.predict(image=handle_file(face), api_name="/upscale")
    with pytest.raises(AppError, match="Upscale factor must be between 1.25 and 2"):
        client.predict(image=handle_file(face), scale=3, api_name="/upscale")


def test_animate_returns_an_mp4_a_gif_and_the_png_frames_of_the_motion(client, fast):
    import zipfile

    import av

    video, gif, frames, metadata = client.predict(prompt="a face", keys="0:neutral; 1:AU12=4", seconds=1, fps=8,
                                                  **fast, api_name="/animate")
    with av.open(video) as container:
        assert len(list(container.decode(video=0))) == 9
    with Image.open(gif) as animation:
        assert animation.n_frames == 9
    with zipfile.ZipFile(frames) as archive:
        assert len(archive.namelist()) == 9
        with archive.open("frame-0008.png") as last:
            assert json.loads(Image.open(last).info["fineface"])["aus"][0]["AU12"] == 4
    assert [aus["AU12"] for aus in metadata["aus"]] == [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4]
    assert metadata["animation"]["keys"] == "0:neutral; 1:AU12=4"


@pytest.mark.parametrize(("values", "message"), [
    ({"keys": "1:AU12=4; 0:neutral"}, "Keyframe times must increase"),
    ({"keys": "0:neutral; 1:AU12=4", "fps": 30, "seconds": 20}, "the limit is at most 300 frames"),
    ({"keys": "0 neutral"}, "has no colon"),
])
def test_animate_refuses_bad_keyframes_readably(client, fast, values, message):
    with pytest.raises(AppError, match=message):
        client.predict(prompt="a face", **{**values, **fast}, api_name="/animate")


def test_upscale_refuses_photos_for_an_image_made_without_and_pixels_its_settings_did_not_make(client, generate,
                                                                                               tmp_path):
    text_only, _ = generate(aus="AU12=2", num_inference_steps=4)
    with pytest.raises(AppError, match="made from no face photo; 1 were sent"):
        client.predict(image=handle_file(text_only), photos=[handle_file(face_picture(tmp_path / "me.png"))],
                       api_name="/upscale")
    huge = tmp_path / "huge.png"
    with Image.open(text_only) as image:
        save_png(image.resize((1024, 1024)), huge, read_settings(text_only))
    with pytest.raises(AppError, match="The image is 1024x1024, but its settings make 256x256 images"):
        client.predict(image=handle_file(huge), api_name="/upscale")


def test_edit_answers_the_whole_photo_with_the_aus_read_and_asked_for(client, random_studio, pixels, tmp_path):
    photo = face_picture(tmp_path / "me.png", size=(640, 480), boxes=((220, 120, 400, 330),))
    path, metadata = client.predict(photo=handle_file(photo), aus="AU12=4", change="AU6=1", num_inference_steps=2,
                                    api_name="/edit")
    before, after = pixels(photo), pixels(path)
    assert after.shape == before.shape and np.array_equal(after[:, :100], before[:, :100])
    read = random_studio.read_for_edit(photo).aus_read
    assert metadata["aus_read"] == pytest.approx(read)
    assert metadata["aus"][0]["AU12"] == 4 and metadata["aus"][0]["AU6"] == pytest.approx(read["AU6"] + 1)
    assert json.loads(Image.open(path).info["fineface"])["au_change"]["AU6"] == 1


def test_edit_explains_a_photo_without_a_face_and_a_bad_request_and_goes_on(client, tmp_path):
    with pytest.raises(AppError, match=r"No face was found in the photo"):
        client.predict(photo=handle_file(blank_photo(tmp_path / "wall.png")), aus="AU12=4", api_name="/edit")
    face = handle_file(face_picture(tmp_path / "me.png"))
    with pytest.raises(AppError, match="AU12 is both set and changed"):
        client.predict(photo=face, aus="AU12=4", change="AU12=1", api_name="/edit")
    with pytest.raises(AppError, match=r"No face is at \(5, 5\)"):
        client.predict(photo=face, face_at="5,5", num_inference_steps=1, api_name="/edit")
    path, _ = client.predict(photo=face, num_inference_steps=1, api_name="/edit")
    assert Image.open(path).size == (480, 400)
