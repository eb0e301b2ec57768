"""Text + AUs + face on the SD 1.5 pipeline: the identity branch is IP-Adapter-FaceID's, exactly."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from fineface_ui.engine.identity_adapter import identity_layer_indices
from fineface_ui.engine.identity_pipeline import FineFaceIdentityPipeline
from fineface_ui.engine.pipeline import FineFacePipeline
from fineface_ui.engine.variants import SD15_IDENTITY
from fineface_ui.errors import CheckpointError, NoFaceError
from fineface_ui.faces.embedder import FaceEmbedder
from fineface_ui.hub.model_sources import IP_ADAPTER_FILE
from fineface_ui.settings import GenerationSettings
from fineface_ui.standins.tiny_face_models import write_model_pack
from fineface_ui.studio import Studio


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
        tokens = identity_pipe.identity.projection(face_embeds)
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


def test_ip_scale_zero_equals_the_au_only_sd15_output(identity_pipe, face_embeds, fast, pixels):
    with_face = identity_pipe("a portrait", {"AU12": 3}, face_embeds=face_embeds, ip_scale=0.0, seed=3, **fast)
    without = identity_pipe("a portrait", {"AU12": 3}, seed=3, **fast)
    assert np.array_equal(pixels(with_face.images[0]), pixels(without.images[0]))
    full = identity_pipe("a portrait", {"AU12": 3}, face_embeds=face_embeds, seed=3, **fast)
    assert not np.array_equal(pixels(full.images[0]), pixels(without.images[0]))
    assert full.metadata["faces"] == 1 and full.metadata["pipeline"] == "sd15-identity"


def test_several_photos_concatenate_their_identity_tokens(identity_pipe):
    faces = torch.nn.functional.normalize(torch.randn(3, 512, generator=torch.Generator().manual_seed(2)), dim=1)
    project = identity_pipe.identity.projection
    tokens = identity_pipe.identity.tokens(faces, count=2, guided=True)
    assert tokens.shape == (4, 3 * 16, identity_pipe.sd.unet.config.cross_attention_dim)
    for image in (0, 1):  # [unconditional x 2, conditional x 2], as diffusers orders the batch
        torch.testing.assert_close(tokens[image], project(torch.zeros(3, 512))[0])
        torch.testing.assert_close(tokens[2 + image], project(faces)[0])
    photo_by_photo = torch.cat([project(face[None])[0] for face in faces])
    torch.testing.assert_close(tokens[2], photo_by_photo)


def identity_kv_per_layer(pipe, face, fast, attention_spy, ip_scale=0.6):
    """Each FineFace layer's identity K and V as the layer reads them while denoising (one step, guided)."""
    seen = {}

    def record(name, processor):
        if getattr(processor, "_identity_kv", None) is not None:  # FineFace layers in a face request
            seen.setdefault(name, tuple(t.clone() for t in processor._identity_kv))

    with attention_spy(pipe.sd.unet, record):
        pipe("a portrait", {"AU12": 2}, face_embeds=face, ip_scale=ip_scale, seed=1,
             **{**fast, "num_inference_steps": 1})
    return seen


def test_each_face_reaches_every_cross_attention_layer_in_the_conditioned_images(identity_pipe, fast, attention_spy):
    faces = torch.nn.functional.normalize(torch.randn(2, 512, generator=torch.Generator().manual_seed(5)), dim=1)
    project = identity_pipe.identity.projection
    first, second = (identity_kv_per_layer(identity_pipe, face[None], fast, attention_spy) for face in faces)
    assert set(first) == set(second) == set(identity_pipe.adapters)
    with torch.no_grad():
        for name, adapter in identity_pipe.adapters.items():
            for seen, face in ((first, faces[:1]), (second, faces[1:])):
                key, value = seen[name]
                # Batch [unconditional, conditional]: the zero embedding's tokens, then this face's.
                for half, embedding in ((0, torch.zeros_like(face)), (1, face)):
                    tokens = project(embedding)
                    torch.testing.assert_close(key[half], adapter.to_k_ip(tokens)[0])
                    torch.testing.assert_close(value[half], 0.6 * adapter.to_v_ip(tokens)[0])
            assert torch.equal(first[name][0][0], second[name][0][0])
            assert not torch.allclose(first[name][0][1], second[name][0][1])


def test_from_pretrained_with_the_identity_variant_loads_the_ip_adapter(sd15_files, face_embeds, fast):
    # A LoRA strength means nothing to a variant without a LoRA: ignored, as the settings ignore it.
    pipe = FineFacePipeline.from_pretrained(**sd15_files, variant=SD15_IDENTITY, device="cpu", lora_scale=0.5)
    assert pipe.variant.name == "sd15-identity" and pipe.lora is None and pipe.identity is not None
    released = torch.load(sd15_files["ip_adapter_weights"] / IP_ADAPTER_FILE, weights_only=True)
    for key, value in released["image_proj"].items():
        torch.testing.assert_close(pipe.identity.projection.state_dict()[key], value, rtol=0, atol=0)
    indices = identity_layer_indices(pipe.sd.unet)
    assert set(indices) == set(pipe.adapters)
    for name, index in indices.items():
        for key in ("to_k_ip", "to_v_ip"):
            weight = getattr(pipe.adapters[name], key).weight
            torch.testing.assert_close(weight, released["ip_adapter"][f"{index}.{key}.weight"], rtol=0, atol=0)
    out = pipe("a portrait", {"AU12": 3}, face_embeds=face_embeds, seed=3, **fast)
    assert out.metadata["faces"] == 1 and out.metadata["lora_scale"] is None


def test_an_identity_key_at_a_self_attention_index_fails_loudly(sd15_files, tmp_path):
    folder = tmp_path / "ip"
    shutil.copytree(sd15_files["ip_adapter_weights"], folder)
    state = torch.load(folder / IP_ADAPTER_FILE, weights_only=True)
    state["ip_adapter"]["0.to_k_ip.weight"] = state["ip_adapter"].pop("1.to_k_ip.weight")
    torch.save(state, folder / IP_ADAPTER_FILE)
    with pytest.raises(CheckpointError, match=r"missing key.*1.to_k_ip.weight.*unexpected key.*0.to_k_ip.weight"):
        FineFaceIdentityPipeline.from_pretrained(**{**sd15_files, "ip_adapter_weights": folder}, device="cpu")


@pytest.fixture(scope="module")
def studio(sd21_pipe, identity_pipe, random_studio, tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    write_model_pack(root)
    return Studio(lambda: sd21_pipe, lambda: identity_pipe, lambda: FaceEmbedder(root=root), random_studio.au_reader)


def face_photo():
    photo = Image.new("RGB", (320, 320), (30, 30, 30))
    ImageDraw.Draw(photo).rectangle((100, 90, 220, 230), fill=(235, 220, 200))
    return photo


def test_studio_uses_sd15_with_a_face_and_sd21_without(studio, fast, pixels):
    settings = GenerationSettings.create("a portrait", {"AU12": 3}, seed=5, **fast)
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


def test_studio_reports_a_photo_without_a_face(studio, fast):
    settings = GenerationSettings.create("a portrait", None, seed=5, **fast)
    with pytest.raises(NoFaceError, match="photo 1"):
        studio.generate(settings, photos=[Image.new("RGB", (200, 200), (128, 128, 128))])
