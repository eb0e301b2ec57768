"""Text + AUs + face on the SD 1.5 pipeline: the identity branch is IP-Adapter-FaceID's, exactly."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from fineface_ui.errors import CheckpointError, NoFaceError
from fineface_ui.faces import FaceEmbedder
from fineface_ui.identity_pipeline import FineFaceIdentityPipeline
from fineface_ui.model_sources import IP_ADAPTER_FILE
from fineface_ui.settings import GenerationSettings
from fineface_ui.studio import Studio
from fineface_ui.standins.tiny_face_models import write_model_pack

from .conftest import FAST


def pixels(image):
    return np.asarray(image, dtype=np.int16)


@pytest.fixture(scope="module")
def face_embeds():
    return torch.nn.functional.normalize(torch.randn(1, 512, generator=torch.Generator().manual_seed(0)), dim=1)


def test_identity_branch_matches_diffusers_own_ip_adapter_loader(identity_pipe, sd15_files, face_embeds):
    from diffusers import StableDiffusionPipeline

    reference = StableDiffusionPipeline.from_pretrained(sd15_files["base_model"], safety_checker=None,
                                                        feature_extractor=None, requires_safety_checker=False)
    reference.load_ip_adapter(str(sd15_files["ip_adapter_weights"]), subfolder="", weight_name=IP_ADAPTER_FILE,
                              image_encoder_folder=None)
    reference.set_ip_adapter_scale(0.7)
    generator = torch.Generator().manual_seed(1)
    latents = torch.randn(1, 4, 16, 16, generator=generator)
    text = torch.randn(1, 77, identity_pipe.sd.unet.config.cross_attention_dim, generator=generator)
    timestep = torch.tensor(300)
    with torch.no_grad():
        expected = reference.unet(latents, timestep, encoder_hidden_states=text,
                                  added_cond_kwargs={"image_embeds": [face_embeds.reshape(1, 1, 512)]}).sample
        tokens = identity_pipe.identity_projection(face_embeds)
        au_tokens = identity_pipe.au_encoder(torch.zeros(1, 12))
        for adapter in identity_pipe.adapters.values():
            adapter.begin_request(au_tokens, 0.0, tokens, ip_scale=0.7)
        try:
            actual = identity_pipe.sd.unet(latents, timestep, encoder_hidden_states=text).sample
        finally:
            for adapter in identity_pipe.adapters.values():
                adapter.end_request()
    # Same weights, same maths; only SDPA vs diffusers' summation order differs (fp32).
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(expected, reference.unet(latents, timestep, encoder_hidden_states=text,
                              added_cond_kwargs={"image_embeds": [torch.zeros(1, 1, 512)]}).sample)


def test_ip_scale_zero_equals_the_au_only_sd15_output(identity_pipe, face_embeds):
    with_face = identity_pipe("a portrait", {"AU12": 3}, face_embeds=face_embeds, ip_scale=0.0, seed=3, **FAST)
    without = identity_pipe("a portrait", {"AU12": 3}, seed=3, **FAST)
    assert np.array_equal(pixels(with_face.images[0]), pixels(without.images[0]))
    full = identity_pipe("a portrait", {"AU12": 3}, face_embeds=face_embeds, seed=3, **FAST)
    assert not np.array_equal(pixels(full.images[0]), pixels(without.images[0]))
    assert full.metadata["faces"] == 1 and full.metadata["pipeline"] == "sd15-identity"


def test_several_photos_concatenate_their_identity_tokens(identity_pipe):
    faces = torch.nn.functional.normalize(torch.randn(3, 512), dim=1)
    tokens = identity_pipe._identity_tokens(faces, count=2, guided=True)
    assert tokens.shape == (4, 3 * 16, identity_pipe.sd.unet.config.cross_attention_dim)
    torch.testing.assert_close(tokens[0], identity_pipe.identity_projection(torch.zeros(3, 512))[0])


def test_an_identity_key_at_a_self_attention_index_fails_loudly(sd15_files, tmp_path):
    folder = tmp_path / "ip"
    shutil.copytree(sd15_files["ip_adapter_weights"], folder)
    state = torch.load(folder / IP_ADAPTER_FILE, weights_only=True)
    state["ip_adapter"]["0.to_k_ip.weight"] = state["ip_adapter"].pop("1.to_k_ip.weight")
    torch.save(state, folder / IP_ADAPTER_FILE)
    with pytest.raises(CheckpointError, match=r"missing key.*1.to_k_ip.weight.*unexpected key.*0.to_k_ip.weight"):
        FineFaceIdentityPipeline.from_pretrained(**{**sd15_files, "ip_adapter_weights": folder}, device="cpu")


@pytest.fixture(scope="module")
def studio(sd21_pipe, identity_pipe, tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    write_model_pack(root)
    return Studio(lambda: sd21_pipe, lambda: identity_pipe, lambda: FaceEmbedder(root=root))


def face_photo():
    photo = Image.new("RGB", (320, 320), (30, 30, 30))
    ImageDraw.Draw(photo).rectangle((100, 90, 220, 230), fill=(235, 220, 200))
    return photo


def test_studio_uses_sd15_with_a_face_and_sd21_without(studio):
    settings = GenerationSettings.create("a portrait", {"AU12": 3}, seed=5, **FAST)
    plain = studio.generate(settings)
    assert plain.faces is None and plain.output.metadata["pipeline"] == "sd21"
    first = studio.generate(settings, photos=[face_photo()])
    second = studio.generate(settings, photos=[face_photo()])
    assert first.output.metadata["pipeline"] == "sd15-identity"
    assert np.array_equal(pixels(first.output.images[0]), pixels(second.output.images[0]))
    assert first.faces.faces[0].face_count == 1
    # The public API takes FaceEmbedder.embed()'s result as it is.
    direct = studio.identity_pipeline().generate(settings, face_embeds=first.faces)
    assert np.array_equal(pixels(direct.images[0]), pixels(first.output.images[0]))
    assert studio.face_embedder().cache_info().hits >= 1


def test_studio_reports_a_photo_without_a_face(studio):
    settings = GenerationSettings.create("a portrait", None, seed=5, **FAST)
    with pytest.raises(NoFaceError, match="photo 1"):
        studio.generate(settings, photos=[Image.new("RGB", (200, 200), (128, 128, 128))])
