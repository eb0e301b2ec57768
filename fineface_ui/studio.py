"""Studio: the one entry point the UI and the CLI use.

It picks the FineFacePipeline variant: without a face the text one (SD 2.1-base); with face photos
it embeds them and runs the identity one (SD 1.5 + IP-Adapter-FaceID). It reads expressions from photos
(the AU reader), and edits a photo's expression (MagicFace, pasted back into the photo). Each model loads
the first time it is needed and then stays; requests that need a model still loading wait for it.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from PIL import Image

from .edit_settings import EditSettings
from .engine.acceleration import Acceleration
from .engine.magicface import MagicFacePipeline
from .engine.pipeline import FineFaceOutput, FineFacePipeline, StepCallback
from .engine.previews import PreviewCallback
from .engine.variants import SD15_IDENTITY, SD21_TEXT
from .errors import InvalidInputError
from .faces.au_reader import AUReader, AUReading
from .faces.detection import default_providers
from .faces.edit_inputs import EditPhoto, EditPhotoReader, Point
from .faces.embedder import FaceEmbedder, FaceEmbeddings
from .faces.model_pack import ensure_model_pack
from .faces.photos import Photo, load_rgb
from .hub.model_sources import edit_weights
from .hub.weights import keep_compiled_code_beside_the_weights, resolve
from .settings import GenerationSettings, Upscale

# Random weights give noise at any size: their demos start small and few-step, to feel quick on a CPU.
RANDOM_WEIGHTS_DEFAULTS = {"num_inference_steps": 4, "width": 256, "height": 256}

# The longest side of an edit's previews and glimpses.
DISPLAY_SIDE = 1024

_open_studios: weakref.WeakValueDictionary[int, "Studio"] = weakref.WeakValueDictionary()


def _studio_by_id(key: int) -> "Studio":
    return _open_studios[key]


@dataclass
class StudioResult:
    output: FineFaceOutput
    faces: FaceEmbeddings | None  # what was detected in the photos, when photos were given


class Studio:
    def __init__(
        self,
        load_text_pipeline: Callable[[], FineFacePipeline],
        load_identity_pipeline: Callable[[], FineFacePipeline],
        load_face_embedder: Callable[[], FaceEmbedder],
        load_au_reader: Callable[[], AUReader],
        load_edit_pipeline: Callable[[], MagicFacePipeline] | None = None,
        find_face_parser: Callable[[], Path] | None = None,
        random_weights: bool = False,
    ) -> None:
        # The edit's models are optional so that a studio for generation alone is four loaders.
        self._loaders = {"text": load_text_pipeline, "identity": load_identity_pipeline, "faces": load_face_embedder,
                         "reader": load_au_reader, "edit": load_edit_pipeline or _no_edit,
                         "edit_photos": find_face_parser or _no_edit}
        self._loaded: dict[str, Any] = {}
        # One lock per model, so a text request need not wait while the face pipeline downloads.
        self._locks = {name: threading.Lock() for name in self._loaders}
        self.random_weights = random_weights
        _open_studios[id(self)] = self

    def __reduce__(self) -> Any:
        # ZeroGPU hands a call's arguments to a forked worker by pickling them; the fork already has
        # this studio with its models, so only a reference travels.
        return _studio_by_id, (id(self),)

    @classmethod
    def from_pretrained(cls, device: str | None = None, acceleration: Acceleration | None = None,
                        **sources: Any) -> "Studio":
        """Real models from the Hub, the cache or weights/; `sources` override repo ids (see hub/weights.py).

        `acceleration`: speed options for both pipelines (default: what wins on the device).
        """
        # The SD 1.5 base model and VAE are named sd15_base_model and sd15_vae; FineFace weights and the
        # preview decoder serve both.
        identity_sources = {k.removeprefix("sd15_"): v for k, v in sources.items() if k.startswith("sd15_")}
        shared = ("fineface_weights", "ip_adapter_weights", "preview_decoder")
        identity_sources.update({k: sources[k] for k in shared if k in sources})
        text_sources = {k: sources[k] for k in SD21_TEXT.sources if k in sources}
        # MagicFace's repo and its SD 1.5 base are named magicface_weights and magicface_base_model.
        edit_sources = {"magicface_weights": sources.get("magicface_weights"),
                        "base_model": sources.get("magicface_base_model"),
                        "preview_decoder": sources.get("preview_decoder")}
        options = {"device": device, "acceleration": acceleration}
        keep_compiled_code_beside_the_weights()
        providers = default_providers(device)  # the face models on the pipelines' GPU
        parser = edit_weights(**edit_sources)["face_parser"]
        return cls(
            lambda: FineFacePipeline.from_pretrained(variant=SD21_TEXT, **text_sources, **options),
            lambda: FineFacePipeline.from_pretrained(variant=SD15_IDENTITY, **identity_sources, **options),
            lambda: FaceEmbedder(root=sources.get("face_models") or ensure_model_pack(), providers=providers),
            lambda: AUReader(face_pack=sources.get("face_models") or ensure_model_pack(), providers=providers),
            lambda: MagicFacePipeline.from_pretrained(**edit_sources, device=device),
            lambda: resolve([parser])[parser],
        )

    @classmethod
    def with_random_weights(cls, folder: Path) -> "Studio":
        """Tiny random models written to `folder`: the whole app works offline, the images are noise."""
        from .hub.model_sources import FACE_PARSER_FILE
        from .standins.tiny_au_reader import write_au_reader
        from .standins.tiny_face_models import write_model_pack
        from .standins.tiny_magicface import write_magicface
        from .standins.tiny_models import write_sd15_fineface, write_sd21_fineface

        folder = Path(folder)
        sd21 = write_sd21_fineface(folder / "sd21")
        sd15 = write_sd15_fineface(folder / "sd15")
        magicface = write_magicface(folder / "magicface")
        face_root = folder / "insightface"
        write_model_pack(face_root)
        reader = write_au_reader(folder / "au_reader.onnx")
        return cls(
            lambda: FineFacePipeline.from_pretrained(**sd21, variant=SD21_TEXT, device="cpu"),
            lambda: FineFacePipeline.from_pretrained(**sd15, variant=SD15_IDENTITY, device="cpu"),
            lambda: FaceEmbedder(root=face_root),
            lambda: AUReader(model=reader, face_pack=face_root),
            lambda: MagicFacePipeline.from_pretrained(**magicface, device="cpu"),
            lambda: magicface["magicface_weights"] / FACE_PARSER_FILE,
            random_weights=True,
        )

    def _get(self, name: str) -> Any:
        with self._locks[name]:
            if name not in self._loaded:
                self._loaded[name] = self._loaders[name]()
            return self._loaded[name]

    def is_loaded(self, name: str) -> bool:
        """Whether "text", "identity", "faces", "reader", "edit" or "edit_photos" is loaded already (loading may
        take minutes)."""
        return name in self._loaded

    def text_pipeline(self) -> FineFacePipeline:
        return self._get("text")

    def identity_pipeline(self) -> FineFacePipeline:
        return self._get("identity")

    def face_embedder(self) -> FaceEmbedder:
        return self._get("faces")

    def au_reader(self) -> AUReader:
        return self._get("reader")

    def edit_pipeline(self) -> MagicFacePipeline:
        return self._get("edit")

    def edit_photo_reader(self) -> EditPhotoReader:
        """The AU reader's detector and LibreFace, with the landmarks and the face parser an edit adds."""
        with self._locks["edit_photos"]:
            if "edit_photos" not in self._loaded:
                self._loaded["edit_photos"] = EditPhotoReader(self.au_reader(), self._loaders["edit_photos"]())
            return self._loaded["edit_photos"]

    def read_aus(self, photos: Sequence[Any]) -> list[AUReading]:
        """The expression of the largest face in each photo: twelve AU intensities on LibreFace's 0..5 scale."""
        return self.au_reader().read(list(photos))

    def generate(self, settings: GenerationSettings, photos: Sequence[Any] = (), on_step: StepCallback | None = None,
                 on_preview: PreviewCallback | None = None) -> StudioResult:
        """Text + AUs, or text + AUs + identity when photos are given."""
        pipeline, faces = self._pipeline_for(photos)
        return StudioResult(pipeline.generate(settings, on_step, _embeddings(faces), on_preview), faces)

    def preview(self, settings: GenerationSettings, photos: Sequence[Any] = ()) -> list[Image.Image]:
        """Quick, rough images, one per AU setting (previews.py): what a slider drag shows, and the quick look
        at an animation's motion."""
        pipeline, faces = self._pipeline_for(photos)
        return pipeline.generate_preview(settings, _embeddings(faces))

    def upscale(self, settings: GenerationSettings, image: Photo, photos: Sequence[Any] = (),
                on_step: StepCallback | None = None, *, upscale: Upscale = Upscale()) -> StudioResult:
        """`image`, made with `settings` (and the faces in `photos`), larger and redrawn (FineFacePipeline.upscale)."""
        picture = Image.fromarray(load_rgb(image, "the image to upscale"))
        pipeline, faces = self._pipeline_for(photos)
        return StudioResult(pipeline.upscale(picture, settings, _embeddings(faces), upscale, on_step), faces)

    def read_for_edit(self, photo: Photo, point: Point | None = None) -> EditPhoto:
        """The largest face of `photo` (or the one at `point`) read and made ready to edit; its AUs are where the
        sliders start."""
        return self.edit_photo_reader().read(photo, point)

    def edit(self, photo: EditPhoto, settings: EditSettings, on_step: StepCallback | None = None,
             on_preview: PreviewCallback | None = None) -> FineFaceOutput:
        """The photo, full size, with its face's expression changed as `settings` asks (MagicFace)."""
        result = self.edit_pipeline().edit(photo.source, photo.background, settings, on_step,
                                           _pasted(photo, on_preview))
        # Which model read the AUs: a reading means something only with its model.
        metadata = {**result.metadata, **photo.record(), "au_reader": self.au_reader().provenance()}
        return FineFaceOutput([photo.paste(result.crop)], metadata)

    def edit_preview(self, photo: EditPhoto, settings: EditSettings) -> Image.Image:
        """A quick, rough edit (a few steps, TAESD), pasted into the photo at display size: what a drag shows."""
        crop = self.edit_pipeline().edit(photo.source, photo.background, settings, preview=True).crop
        return _display_size(photo.paste(crop))

    def _pipeline_for(self, photos: Sequence[Any]) -> tuple[FineFacePipeline, FaceEmbeddings | None]:
        """The text pipeline without photos; with them, the identity pipeline and the faces found in them."""
        if not photos:
            return self.text_pipeline(), None
        return self.identity_pipeline(), self.face_embedder().embed(list(photos))


def _no_edit() -> Any:
    raise InvalidInputError("This app was started without the photo edit's models.")


def _pasted(photo: EditPhoto, on_preview: PreviewCallback | None) -> PreviewCallback | None:
    """Glimpses of an edit's crop shown pasted into the photo, as the result will be."""
    if on_preview is None:
        return None
    return lambda crops, step, total: on_preview([_display_size(photo.paste(crop)) for crop in crops], step, total)


def _display_size(image: Image.Image) -> Image.Image:
    """A glimpse or preview of a large photo's edit, at most DISPLAY_SIDE a side: a 40 MP frame per glimpse
    would cost more to send than to make. The result itself keeps every pixel."""
    image.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE), Image.Resampling.BILINEAR)
    return image


def _embeddings(faces: FaceEmbeddings | None) -> Any:
    return None if faces is None else faces.embeddings
