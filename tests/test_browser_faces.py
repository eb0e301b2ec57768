"""Face photos on the page, in a real headless Chromium (Debian's)."""

from __future__ import annotations

import threading

from PIL import Image

from tests.app_fixtures import blank_photo, running_app
from tests.browser_page import BROWSER_TESTS, RENDER_MS, wait_for_first_image

pytest_plugins = ["tests.browser_page"]  # its fixtures: app_url, browser, page

pytestmark = BROWSER_TESTS


def test_a_photo_without_a_face_says_so(page, tmp_path):
    page.get_by_text("Face photos (optional)").click()
    page.locator("#face-photos input[type=file]").set_input_files(blank_photo(tmp_path / "empty_wall.png"))
    page.locator("#face-note").get_by_text("No face found").wait_for(timeout=RENDER_MS)
    assert "empty_wall.png" in page.locator("#face-note").inner_text()


def test_the_first_face_photo_shows_the_face_models_loading_then_the_face(
        browser, sd21_pipe, identity_pipe, random_studio, tmp_path):
    from PIL import ImageDraw

    from fineface_ui.faces.embedder import FaceEmbedder
    from fineface_ui.standins.tiny_face_models import write_model_pack
    from fineface_ui.studio import Studio

    write_model_pack(tmp_path / "faces")
    downloading = threading.Event()

    def slow_identity_pipeline():  # stands for the first download of several GB
        assert downloading.wait(60)
        return identity_pipe

    face = Image.new("RGB", (320, 320), (30, 30, 30))
    ImageDraw.Draw(face).rectangle((100, 90, 220, 230), fill=(235, 220, 200))  # a face to the tiny detector
    face.save(tmp_path / "me.png")
    studio = Studio(lambda: sd21_pipe, slow_identity_pipeline, lambda: FaceEmbedder(root=tmp_path / "faces"),
                    random_studio.au_reader)
    with running_app(studio) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url)
        wait_for_first_image(page)  # its render done, so none is left running when the app closes
        page.get_by_text("Face photos (optional)").click()
        page.locator("#face-photos input[type=file]").set_input_files(tmp_path / "me.png")
        page.get_by_text("Loading the face pipeline").first.wait_for(timeout=RENDER_MS)
        downloading.set()
        page.locator("#face-note").get_by_text("Face found in 1 photo(s)").wait_for(timeout=RENDER_MS)
        page.close()
    assert studio.is_loaded("identity")
