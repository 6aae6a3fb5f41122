"""Decode each image of a large folder once per node: a memory-mapped uint8 file of the decoded, resized images
that every trial on the node reads, filled on the first pass by whoever (a DataLoader worker of any trial) asks
for an image first.

    cache = FolderCache.for_files(files, channels=3, size=224)   # keyed by the files (path, size, mtime) and size
    pixels = cache.pixels(slot, files[slot])                     # uint8 (C, size, size), decoded at most once

Two files in `autotune.cache.cache_dir() / "images"`: `<key>.u8` holds the pixels (N x C x size x size bytes,
sparse until filled) and `<key>.done` a byte per image (1: decoded) plus a decode counter. An image is decoded
under a lock on its own byte of the `.done` file, so two trials never decode the same image twice; once done, it
is read without a lock. Nothing is loaded into memory: the OS pages the file in as batches read it.
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from autotune.cache import cache_dir
from autotune.paths import shown
from autotune.vision.inference import Resize

__all__ = ["FolderCache"]

_COUNTER = struct.Struct("<q")  # the decode counter, after the per-image bytes of the .done file
_OPEN: dict[str, FolderCache | None] = {}  # per process: the caches opened, by key (None: could not be)
log = logging.getLogger("autotune")


class FolderCache:
    """The decoded images of one list of files at one size and channel count."""

    def __init__(self, key: str, count: int, shape: tuple[int, int, int]) -> None:
        self.key, self.count, self.shape = key, count, shape
        folder = cache_dir() / "images"
        folder.mkdir(parents=True, exist_ok=True)
        self.pixels_path, self.done_path = folder / f"{key}.u8", folder / f"{key}.done"
        _grow(self.pixels_path, count * int(np.prod(shape)))
        _grow(self.done_path, count + _COUNTER.size)
        self._pixels = np.memmap(self.pixels_path, np.uint8, "r+", shape=(count, *shape))
        self._done = np.memmap(self.done_path, np.uint8, "r+", shape=(count + _COUNTER.size,))
        self._fd = os.open(self.done_path, os.O_RDWR)

    @staticmethod
    def key_of(files: Sequence[str], channels: int, size: int, resize: Resize = Resize()) -> str:
        """The cache key of `files` at `channels` x `size` x `size`, resized as `resize` says: their paths, sizes
        and modification times (a changed or replaced file gives a new key, so a stale image is never read). A path
        that is not UTF-8 counts by its bytes."""
        sha = hashlib.sha256(f"{channels}x{size}\n{resize!r}\n".encode())
        for path in files:
            stat = os.stat(path)
            line = f"{os.path.abspath(path)}\t{stat.st_size}\t{stat.st_mtime_ns}\n"
            sha.update(line.encode("utf-8", "surrogateescape"))
        return f"{sha.hexdigest()[:24]}-{channels}x{size}"

    @classmethod
    def open(cls, key: str, count: int, shape: tuple[int, int, int]) -> FolderCache | None:
        """The cache `key`, opened once per process (DataLoader workers and trials each open their own); None,
        with a warning the first time, when the cache folder cannot be written (a read-only HOME): the images are
        then decoded at each read, as with `data.cache: false`."""
        if key not in _OPEN:
            try:
                _OPEN[key] = cls(key, count, shape)
            except OSError as err:
                _OPEN[key] = None
                log.warning("cannot keep the decoded images in autotune's cache folder (%s): each image is decoded "
                            "at every read, which is slower; set XDG_CACHE_HOME to a folder you can write, or "
                            "data.cache: false to silence this warning",
                            f"{err.strerror}: {shown(err.filename)}" if err.filename else err)
        return _OPEN[key]

    def pixels(self, slot: int, decode: Callable[[], np.ndarray]) -> np.ndarray:
        """Image `slot`: read from the cache, or decoded by `decode()` and stored, exactly once per node."""
        if not self._done[slot]:
            with self._locked(slot, 1):
                if not self._done[slot]:
                    self._pixels[slot] = decode()
                    self._done[slot] = 1  # after the pixels: a reader that sees 1 finds them
                    self._count()
        return np.array(self._pixels[slot])

    def complete(self, slots: Sequence[int]) -> bool:
        """Whether every image of `slots` is in the cache (then `read` serves them without decoding)."""
        return bool(self._done[np.asarray(slots, dtype=np.int64)].all())

    def read(self, slots: np.ndarray) -> np.ndarray:
        """The cached images of `slots`, in that order: one copy out of the mapped file."""
        return self._pixels[slots]

    @property
    def decodes(self) -> int:
        """How many images were decoded into this cache, by every process."""
        return _COUNTER.unpack(self._done[self.count:].tobytes())[0]

    def _count(self) -> None:
        with self._locked(self.count, _COUNTER.size):
            self._done[self.count:] = np.frombuffer(_COUNTER.pack(self.decodes + 1), np.uint8)

    @contextmanager
    def _locked(self, offset: int, length: int) -> Iterator[None]:
        fcntl.lockf(self._fd, fcntl.LOCK_EX, length, offset)
        try:
            yield
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, length, offset)


def _grow(path: Path, size: int) -> None:
    """`path` at least `size` bytes long, zero-filled (sparse): safe when several processes do it at once."""
    with open(path, "ab") as handle:
        if handle.tell() < size:
            os.truncate(path, size)
