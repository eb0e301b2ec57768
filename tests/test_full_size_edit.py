"""The full-size MagicFace stand-in of the GPU benchmark (standins/full_size.py), built on the meta device,
holds exactly the weights the loaders would take from the released files, and is set up as loading sets
MagicFace up."""

from pathlib import Path

import pytest
import torch

from fineface_ui.engine.checkpoints import check_keys
from fineface_ui.engine.magicface import AU_PROJECTION, DENOISER_OPTIONS, au_projection_shapes
from fineface_ui.hub.model_sources import DENOISING_UNET, IDENTITY_UNET, MODEL_WEIGHTS_FILE
from fineface_ui.standins.full_size import edit_pipeline
from fineface_ui.standins.layouts import SD15_UNET, meta_unet


@pytest.fixture(scope="module")
def full_size_pipe():
    return edit_pipeline("meta", torch.float16)


def shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def test_the_denoiser_holds_the_keys_and_shapes_of_magicfaces_released_file(full_size_pipe):
    # What load_denoiser builds from the released config.json (SD 1.5's UNet taking 8 channels,
    # docs/magicface.md) and then requires of the file: that UNet's weights and the AU projection's.
    released = meta_unet({**SD15_UNET, "in_channels": 8, **DENOISER_OPTIONS})
    expected = {**shapes(released), **au_projection_shapes(released)}
    assert expected[f"{AU_PROJECTION}.weight"] == (1280, 12)  # the authors' hard-coded Linear(12, 1280)
    # The file names the AU projection au_aug_mlp; the loader puts it in the class-embedding slot.
    as_saved = {key.replace("class_embedding.", f"{AU_PROJECTION}."): value
                for key, value in full_size_pipe.denoiser.state_dict().items()}
    check_keys(Path(DENOISING_UNET, MODEL_WEIGHTS_FILE), as_saved, expected)


def test_the_id_unet_holds_the_keys_and_shapes_of_sd15s_unet(full_size_pipe):
    check_keys(Path(IDENTITY_UNET, MODEL_WEIGHTS_FILE), full_size_pipe.identity_unet.state_dict(),
               shapes(meta_unet(SD15_UNET)))


def test_the_text_encoder_fits_the_unets_and_the_pipeline_is_in_the_dtype_asked(full_size_pipe):
    width = full_size_pipe.text_encoder.config.hidden_size
    assert width == full_size_pipe.denoiser.config.cross_attention_dim == 768
    assert full_size_pipe.dtype == torch.float16
    assert {parameter.dtype for parameter in full_size_pipe.identity_unet.parameters()} == {torch.float16}


def test_the_schedule_is_the_one_loading_sets_up_from_sd15s_files(full_size_pipe, magicface_pipe):
    assert type(full_size_pipe.scheduler) is type(magicface_pipe.scheduler)
    assert dict(full_size_pipe.scheduler.config) == dict(magicface_pipe.scheduler.config)
