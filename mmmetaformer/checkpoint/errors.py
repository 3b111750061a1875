"""The errors of reading a checkpoint file or URL."""
import pickle


class CheckpointError(ValueError):
    """A checkpoint file or URL cannot be read; the message names it and
    says what it appears to be."""


class RefusedCheckpointError(CheckpointError, pickle.UnpicklingError):
    """``torch.load(weights_only=True)`` refused an object in the file (also
    a ``pickle.UnpicklingError``, what torch raises)."""
