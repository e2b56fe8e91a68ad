"""The bench page keeps the last label photos as owner-only files, not in the process's memory."""

from __future__ import annotations

import stat
from pathlib import Path

from edge_agent.event_codec import uuid7
from edge_agent.ui.bench import MAX_PHOTOS, PHOTOS, BenchBoard


def _jpeg(i: int) -> bytes:
    return b"\xff\xd8" + i.to_bytes(4, "big") * 1000 + b"\xff\xd9"


def test_photos_are_files_capped_and_owner_only(tmp_path: Path) -> None:
    board = BenchBoard(data_dir=tmp_path)
    ids = [uuid7(1_700_000_000_000 + i) for i in range(MAX_PHOTOS + 5)]
    for i, event_id in enumerate(ids):
        board.keep_photo(event_id, _jpeg(i))
    folder = tmp_path / PHOTOS
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted(f"{e}.jpg" for e in ids[5:])  # the oldest five went
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    assert board.photo(ids[0]) is None
    assert board.photo(ids[-1]) == _jpeg(len(ids) - 1)
    # the bytes live on disk: the board holds no photo in memory
    assert all(v is None for v in board._photos.values())


def test_photos_survive_a_restart_and_outside_names_are_never_paths(tmp_path: Path) -> None:
    first = BenchBoard(data_dir=tmp_path)
    event_id = uuid7(1_700_000_000_000)
    first.keep_photo(event_id, _jpeg(1))
    (tmp_path / "secret.jpg").write_bytes(b"not a photo of today")
    (tmp_path / PHOTOS / "notes.txt").write_text("left by someone")
    again = BenchBoard(data_dir=tmp_path)
    assert again.photo(event_id) == _jpeg(1)
    for name in ("../secret", "notes", "../../etc/passwd", ""):
        assert again.photo(name) is None


def test_without_a_data_directory_photos_stay_in_memory(tmp_path: Path) -> None:
    board = BenchBoard()
    board.keep_photo("e-1", _jpeg(1))
    assert board.photo("e-1") == _jpeg(1)
    assert not (tmp_path / PHOTOS).exists()
