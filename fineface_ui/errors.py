"""Errors a user can act on. Their message is what the UI, the API and the CLI show."""


class FineFaceError(Exception):
    """Base class: the message is complete, readable and safe to show to a user."""


class InvalidInputError(FineFaceError, ValueError):
    """A value given by the user (AU, prompt, size, photo, ...) cannot be used."""


class NoFaceError(InvalidInputError):
    """A photo was given for identity but no face was found in it."""


class MissingWeightsError(FineFaceError, FileNotFoundError):
    """Model files are neither on disk nor downloadable right now."""


class CheckpointError(FineFaceError):
    """A checkpoint file is unreadable or does not match the expected format."""


class GPUMemoryError(FineFaceError):
    """The GPU ran out of memory; the request was dropped, its memory freed, and the next one can run."""

    MESSAGE = "GPU out of memory: try a smaller image size or fewer images (sweep frames)."


class DownloadError(MissingWeightsError):
    """The Hub refused or failed a download (no such repo, gated, a missing file, a server error, a full disk)."""
