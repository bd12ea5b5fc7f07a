"""Errors whose message is written for the person using the app.

Every layer (UI, CLI, API) shows ``str(error)`` as is, so messages say what went
wrong and what to do, in plain words.
"""


class InpaintError(Exception):
    """Base class: anything the user can fix or should be told about."""


class BadImageError(InpaintError):
    """The uploaded file is not a usable image (corrupt, unsupported, too large)."""


class BadMaskError(InpaintError):
    """The mask is empty, covers everything, or does not fit the image."""


class WeightsError(InpaintError):
    """Weights are missing, corrupt, fail their checksum or do not fit the network."""


class ModelUnavailableError(InpaintError):
    """The model cannot run here (weights missing, offline, unknown id)."""


class OutOfMemoryError(InpaintError):
    """The device ran out of memory; smaller inputs or another device may work."""


class Cancelled(InpaintError):
    """The client left (closed the tab, cancelled the call): the work stopped and nothing was written."""


class CropSizeError(InpaintError, ValueError):
    """A crop the network's architecture cannot take (its sides are off the network's size multiple).

    Also a ``ValueError``: it is a bad argument to ``inpaint`` as much as a message for the user.
    """
