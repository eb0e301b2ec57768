"""A page on another site cannot upload files to, or run anything on, an app the user has open locally."""

from __future__ import annotations

import httpx
import pytest

from tests.app_fixtures import running_app


@pytest.fixture(scope="module")
def app_url(random_studio):
    with running_app(random_studio) as url:
        yield url.rstrip("/")


def upload(url, **headers):
    return httpx.post(f"{url}/gradio_api/upload", files={"files": ("face.png", b"\x89PNG not really")},
                      headers=headers, timeout=30)


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:1"])
def test_an_upload_from_another_sites_page_is_refused(app_url, origin):
    response = upload(app_url, Origin=origin)
    assert response.status_code == 403 and origin in response.text


def test_the_apps_own_page_and_clients_without_a_page_can_upload(app_url):
    assert upload(app_url, Origin=app_url).status_code == 200
    assert upload(app_url).status_code == 200  # gradio_client and curl send no Origin
    # Behind a proxy (a Hugging Face Space) the public host arrives as X-Forwarded-Host.
    assert upload(app_url, Origin="https://me-fineface.hf.space", **{"X-Forwarded-Host": "me-fineface.hf.space"}
                  ).status_code == 200


def test_reading_the_page_from_anywhere_still_works(app_url):
    assert httpx.get(app_url, headers={"Origin": "https://evil.example"}, timeout=30).status_code == 200
