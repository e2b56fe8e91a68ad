"""Label vision: camera seam, quality gate, multi-pass decoding, voting and evidence photos.

Public entry points: ``vision.camera.camera_from_settings`` / ``open_camera`` (Camera seam),
``vision.reader.read_label`` (async, for the station) and ``read_frames`` (sync),
``vision.decode.decode_gray`` (one frame), ``vision.quality.assess`` (quality gate).
"""
