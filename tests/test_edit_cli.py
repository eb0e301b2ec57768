"""`fineface-ui edit PHOTO --set AU12=4 --out edited.png`: the whole photo, its face's expression changed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from fineface_ui.cli import main
from fineface_ui.png_info import save_png
from tests.app_fixtures import blank_photo, face_picture


def test_an_edit_writes_the_photo_at_its_size_with_the_aus_read_and_asked_for(tmp_path, capsys):
    photo = face_picture(tmp_path / "photo.png", size=(800, 600), boxes=((300, 200, 480, 400),))
    out = tmp_path / "edited.png"
    assert main(["edit", "--random-weights", str(photo), "--set", "AU12=4", "--change", "AU6=+1",
                 "--out", str(out)]) == 0
    original, edited = (np.asarray(Image.open(path).convert("RGB")) for path in (photo, out))
    assert edited.shape == original.shape
    assert np.array_equal(edited[:, :150], original[:, :150]) and np.array_equal(edited[:, 650:], original[:, 650:])
    with Image.open(out) as image:
        stored = json.loads(image.info["fineface"])
        assert "parameters" not in image.info  # no A1111 recipe: an edit cannot be redone without its photo
    assert stored["aus"][0]["AU12"] == 4 and stored["aus"][0]["AU6"] == pytest.approx(stored["aus_read"]["AU6"] + 1)
    assert stored["au_change"]["AU12"] == pytest.approx(4 - stored["aus_read"]["AU12"])
    assert stored["num_inference_steps"] == 4  # random weights: a smoke test of seconds
    assert f"wrote {out}" in capsys.readouterr().out


def test_a_photo_without_a_face_exits_2_with_the_message(tmp_path, capsys):
    assert main(["edit", "--random-weights", str(blank_photo(tmp_path / "wall.png")), "--set", "AU12=4",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "No face was found in the photo (wall.png)" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("arguments, message", [
    (["--set", "AU3=1"], "Unknown Action Unit 'AU3'"),
    (["--set", "AU12=4", "--change", "AU12=1"], "AU12 is both set and changed"),
    (["--face-at", "left"], "Cannot read the face's point"),
    (["--guidance", "20"], "Guidance scale must be between 0 and 10"),
])
def test_bad_requests_are_refused_before_any_model_loads(tmp_path, capsys, no_model_loads, arguments, message):
    photo = face_picture(tmp_path / "photo.png")
    assert main(["edit", str(photo), *arguments]) == 2
    assert message in capsys.readouterr().err


def test_an_edit_png_is_not_taken_for_generation_settings(tmp_path, capsys):
    edited = tmp_path / "edited.png"
    save_png(Image.new("RGB", (8, 8)), edited, {
        "aus": [{}], "aus_read": {}, "seed": 0, "num_inference_steps": 50, "guidance_scale": 1.5, "width": 8,
        "height": 8, "prompt": "A close up of a person.", "scheduler": "unipc", "pipeline": "magicface-edit"})
    assert main(["generate", "--random-weights", "--from", str(edited)]) == 2
    assert "is a photo edit" in capsys.readouterr().err
