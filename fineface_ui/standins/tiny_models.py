"""Tiny random-weight models written in the real released file formats.

They let the whole app run offline (`python app.py --random-weights`) and give the tests real
files to load: a diffusers-layout base pipeline (tiny UNet, VAE, CLIP text encoder, a tokenizer
built from a vocab written here), a tiny TAESD preview decoder and the FineFace checkpoints with the released names, keys and
dtypes. Images from them are noise; the loading code and data path are the real ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, AutoencoderTiny, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from peft import LoraConfig, get_peft_model_state_dict
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from ..aus import NUM_AUS
from ..engine.attention import attention_layers
from ..engine.identity_adapter import FACE_EMBEDDING_DIM, LAYER_KEYS, identity_layer_indices
from ..engine.lora import FILE_PREFIX, PROJECTIONS
from ..engine.variants import SD15_IDENTITY, SD21_TEXT

LORA_RANK = 32  # as released
# Text width (= UNet cross-attention width = AU token width). SD 2.1's AU encoder is Linear(12, 64)
# padded to the token, so its tiny token must hold 12 + 64 values.
SD21_TOKEN_DIM = 96
SD15_TOKEN_DIM = 48
SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")


def _byte_vocab() -> dict[str, int]:
    """A CLIP byte-level BPE vocab with no merges: every byte, alone or word-final, plus the specials."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    symbols = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            symbols.append(256 + extra)
            extra += 1
    chars = [chr(code) for code in symbols]
    tokens = chars + [c + "</w>" for c in chars] + list(SPECIAL_TOKENS)
    return {token: index for index, token in enumerate(tokens)}


def tokenizer_from_vocab(folder: Path) -> CLIPTokenizer:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(_byte_vocab()))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"), model_max_length=77)


def tiny_base_pipeline(token_dim: int, linear_projection: bool, seed: int = 0) -> StableDiffusionPipeline:
    """A random SD-shaped pipeline: two UNet levels with cross-attention down, mid and up."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=32,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=token_dim,
        attention_head_dim=(2, 4) if linear_projection else 8,
        use_linear_projection=linear_projection,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=256,
    )
    with _scratch() as scratch:
        tokenizer = tokenizer_from_vocab(scratch)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(_byte_vocab()), hidden_size=token_dim, intermediate_size=2 * token_dim,
        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77, projection_dim=token_dim,
        bos_token_id=len(_byte_vocab()) - 2, eos_token_id=len(_byte_vocab()) - 1, pad_token_id=len(_byte_vocab()) - 1,
    ))
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False)
    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


class _scratch:
    """A temporary folder for the tokenizer files (the tokenizer is saved with the pipeline anyway)."""

    def __enter__(self) -> Path:
        import tempfile

        self._dir = tempfile.TemporaryDirectory()
        return Path(self._dir.name)

    def __exit__(self, *exc: object) -> None:
        self._dir.cleanup()


def write_au_files(unet: UNet2DConditionModel, folder: Path, encoder_name: str, adapter_name: str,
                   hidden_dim: int, seed: int = 1) -> None:
    """The AU encoder (Linear(12, hidden)) and the per-layer au_to_k/au_to_v projections, as torch pickles."""
    generator = torch.Generator().manual_seed(seed)
    token_dim = unet.config.cross_attention_dim
    torch.save({"au_encoder.weight": torch.randn(hidden_dim, NUM_AUS, generator=generator) * 0.3,
                "au_encoder.bias": torch.randn(hidden_dim, generator=generator) * 0.1}, folder / encoder_name)
    adapter = {}
    for name, layer in attention_layers(unet, cross_only=True).items():
        hidden = layer.to_out[0].in_features
        for projection in ("au_to_k", "au_to_v"):
            adapter[f"{name}.{projection}.weight"] = torch.randn(hidden, token_dim, generator=generator) * 0.05
    torch.save(adapter, folder / adapter_name)


def write_lora_file(unet: UNet2DConditionModel, path: Path, seed: int = 2) -> None:
    """A rank-32 LoRA named the way PEFT names it, with diffusers' 'unet.' prefix and no alpha metadata."""
    config = LoraConfig(r=LORA_RANK, lora_alpha=8, target_modules=list(PROJECTIONS), init_lora_weights=False)
    unet.add_adapter(config, adapter_name="tiny")
    generator = torch.Generator().manual_seed(seed)
    state = {f"{FILE_PREFIX}.{key}": torch.randn(value.shape, generator=generator) * 0.05
             for key, value in get_peft_model_state_dict(unet, adapter_name="tiny").items()}
    unet.delete_adapters("tiny")
    save_file(state, path)


def write_preview_decoder(folder: Path, seed: int = 4) -> Path:
    """A TAESD (AutoencoderTiny) narrower and shallower than madebyollin/taesd, saved as that repo holds it:
    config.json and diffusion_pytorch_model.safetensors at the folder's root."""
    folder = Path(folder)
    torch.manual_seed(seed)
    AutoencoderTiny(encoder_block_out_channels=(8,) * 4, decoder_block_out_channels=(8,) * 4,
                    num_encoder_blocks=(1,) * 4, num_decoder_blocks=(1,) * 4, latent_channels=4,
                    ).save_pretrained(folder)
    # diffusers saves a block_out_channels that its own loader warns about; the released config has none.
    config = json.loads((folder / "config.json").read_text())
    del config["block_out_channels"]
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


def write_sd21_fineface(root: Path, seed: int = 0) -> dict[str, Path]:
    """A tiny SD 2.1-like base folder, a FineFace weights folder and a TAESD folder, by source name."""
    base, fineface = Path(root) / "sd21-base", Path(root) / "fineface"
    sd = tiny_base_pipeline(SD21_TOKEN_DIM, linear_projection=True, seed=seed)
    sd.save_pretrained(base)
    fineface.mkdir(parents=True, exist_ok=True)
    write_au_files(sd.unet, fineface, "au_encoder.ckpt", "attn_processors.ckpt",
                   hidden_dim=SD21_TEXT.au_hidden_dim(SD21_TOKEN_DIM), seed=seed + 1)
    write_lora_file(sd.unet, fineface / "pytorch_lora_weights.safetensors", seed=seed + 2)
    return {"base_model": base, "fineface_weights": fineface,
            "preview_decoder": write_preview_decoder(Path(root) / "taesd", seed=seed + 4)}


def write_ip_adapter_file(unet: UNet2DConditionModel, path: Path, num_tokens: int = 16, seed: int = 3) -> None:
    """An IP-Adapter-FaceID portrait .bin: {'image_proj': MLP + LayerNorm, 'ip_adapter': per-layer K/V by index}."""
    generator = torch.Generator().manual_seed(seed)
    token_dim = unet.config.cross_attention_dim
    hidden = 2 * FACE_EMBEDDING_DIM
    image_proj = {
        "proj.0.weight": torch.randn(hidden, FACE_EMBEDDING_DIM, generator=generator) * 0.05,
        "proj.0.bias": torch.zeros(hidden),
        "proj.2.weight": torch.randn(token_dim * num_tokens, hidden, generator=generator) * 0.05,
        "proj.2.bias": torch.zeros(token_dim * num_tokens),
        "norm.weight": torch.ones(token_dim),
        "norm.bias": torch.zeros(token_dim),
    }
    layers = attention_layers(unet)
    ip_adapter = {
        f"{index}.{projection}.weight":
            torch.randn(layers[name].to_out[0].in_features, token_dim, generator=generator) * 0.05
        for name, index in identity_layer_indices(unet).items() for projection in LAYER_KEYS
    }
    torch.save({"image_proj": image_proj, "ip_adapter": ip_adapter}, path)


def write_sd15_fineface(root: Path, seed: int = 10) -> dict[str, Path]:
    """Tiny SD 1.5-like base, separate VAE, SD 1.5 FineFace files, an IP-Adapter-FaceID portrait file and TAESD."""
    root = Path(root)
    folders = {name: root / name for name in ("base_model", "vae", "fineface_weights", "ip_adapter_weights")}
    sd = tiny_base_pipeline(SD15_TOKEN_DIM, linear_projection=False, seed=seed)
    sd.save_pretrained(folders["base_model"])
    sd.vae.save_pretrained(folders["vae"])
    folders["fineface_weights"].mkdir(parents=True, exist_ok=True)
    folders["ip_adapter_weights"].mkdir(parents=True, exist_ok=True)
    write_au_files(sd.unet, folders["fineface_weights"], "sd15_au_encoder.ckpt", "sd15_attn_processors.ckpt",
                   hidden_dim=SD15_IDENTITY.au_hidden_dim(SD15_TOKEN_DIM), seed=seed + 1)
    write_ip_adapter_file(sd.unet, folders["ip_adapter_weights"] / "ip-adapter-faceid-portrait-v11_sd15.bin",
                          seed=seed + 3)
    return {**folders, "preview_decoder": write_preview_decoder(root / "taesd", seed=seed + 4)}
