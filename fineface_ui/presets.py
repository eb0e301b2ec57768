"""Named AU settings an artist can start from: basic emotions, the paper's combinations, a few moods."""

from __future__ import annotations

from .aus import au_dict

# Intensities are FACS-like (1 = trace .. 5 = maximum), kept inside the trained range 0..5.
PRESETS: dict[str, dict[str, float]] = {
    "Neutral": {},
    # Basic emotions, after the EMFACS prototypes restricted to the twelve AUs the model knows.
    "Happiness": {"AU6": 3.0, "AU12": 4.0},
    "Sadness": {"AU1": 3.5, "AU4": 2.0, "AU15": 3.0},
    "Surprise": {"AU1": 4.0, "AU2": 4.0, "AU5": 3.0, "AU26": 3.5},
    "Fear": {"AU1": 3.5, "AU2": 3.0, "AU4": 2.5, "AU5": 4.0, "AU20": 3.0, "AU26": 2.5},
    # EMFACS anger is AU4+5+7+23 (+17); AU7 and AU23 (lid and lip tighteners) are not among our
    # twelve, so the brow lowerer, the glare of AU5 and the raised chin of AU17 carry it.
    "Anger": {"AU4": 4.0, "AU5": 3.0, "AU17": 2.5},
    "Disgust": {"AU9": 4.0, "AU15": 2.5, "AU17": 2.0},
    # AU combinations shown in the FineFace paper.
    "Paper: AU1+2+6+12": {"AU1": 3.0, "AU2": 3.0, "AU6": 3.0, "AU12": 4.0},
    "Paper: AU4+25+26": {"AU4": 3.5, "AU25": 3.0, "AU26": 3.0},
    "Paper: AU1+2+5+25+26": {"AU1": 3.0, "AU2": 3.0, "AU5": 3.0, "AU25": 3.0, "AU26": 3.5},
    "Paper: AU4+6+17+20": {"AU4": 3.0, "AU6": 2.5, "AU17": 3.0, "AU20": 3.0},
    "Paper: AU1+2+4+9": {"AU1": 3.0, "AU2": 2.5, "AU4": 3.0, "AU9": 3.5},
    # Moods for artists; subtle on purpose, since small intensities read as attitude rather than emotion.
    "Focused": {"AU4": 1.5, "AU17": 1.0},
    # A real sceptical look is asymmetric, which a whole-face AU cannot express; this is the symmetric cousin.
    "Sceptical": {"AU4": 1.5, "AU15": 1.5},
    # Negative AU5 narrows the eyes without the cheek lift doing all the work.
    "Squint": {"AU4": 1.0, "AU5": -1.5, "AU6": 2.5},
    "Gentle smile": {"AU6": 1.5, "AU12": 2.5},
    "Big laugh": {"AU6": 4.5, "AU12": 5.0, "AU25": 4.0, "AU26": 3.0},
}


def preset_aus(name: str) -> dict[str, float]:
    """All twelve AU values of a preset, unmentioned ones 0; KeyError for an unknown name."""
    return au_dict(PRESETS[name])
