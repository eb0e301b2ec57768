"""FineFace UI: fine-grained facial expression control (FACS Action Units) for Stable Diffusion."""

from .aus import ACTION_UNITS, AU_NAMES, au_dict, au_vector
from .errors import CheckpointError, FineFaceError, InvalidInputError, MissingWeightsError, NoFaceError
from .faces import FaceEmbedder, FaceEmbeddings
from .identity_pipeline import FineFaceIdentityPipeline
from .pipeline import FineFaceOutput, FineFacePipeline
from .settings import GenerationSettings
from .versions import APP_VERSION as __version__

__all__ = [
    "ACTION_UNITS", "AU_NAMES", "au_dict", "au_vector",
    "FineFaceError", "InvalidInputError", "NoFaceError", "MissingWeightsError", "CheckpointError",
    "FineFacePipeline", "FineFaceIdentityPipeline", "FineFaceOutput", "GenerationSettings",
    "FaceEmbedder", "FaceEmbeddings",
]
