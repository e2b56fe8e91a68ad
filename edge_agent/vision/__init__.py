"""Label vision: camera seam, quality gate, multi-pass decoding, voting and evidence photos.

Public entry points: ``vision.camera.camera_from_settings`` / ``open_camera`` (Camera seam),
``vision.reader.read_label`` (async, for the station) and ``read_frames`` (sync),
``vision.decode.decode_gray`` (one frame), ``vision.quality.assess`` (quality gate).
"""

# public modules; importing the package imports none of them
__all__ = [
    "camera",
    "camera_files",
    "decode",
    "evidence",
    "quality",
    "reader",
    "settings",
]
