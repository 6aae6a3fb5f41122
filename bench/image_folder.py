"""Image folders of real size, side by side: the engine's streamed image folder (each image decoded once per node
into a memory-mapped cache) against the pipeline a user would write, torchvision's `ImageFolder` + `DataLoader`
with the same decode and resize, on a folder of JPEG photos of 500x375 read at 224 px.

    python bench/image_folder.py                          # 2,000 photos; writes its section of docs/benchmarks.md
    python bench/image_folder.py --images 200 --no-write  # a smoke run

Measured, each reader in a fresh process with 2 DataLoader workers and batches of 64 uint8 images:
- images/s of the plain pipeline (each epoch decodes again), and of the cached one's first epoch (decode and fill)
  and later epochs (read from the cache);
- two trials reading the folder at once, from an empty cache: how many images were decoded (the cache counts);
- the anonymous memory (RssAnon: not the file's pages, which the OS may drop) of a reader and its workers, at
  its peak during a cached epoch, for half the folder and the whole of it.
Goals: cached epochs >= 5x the plain pipeline's images/s; 2 trials decode each image once; memory flat (the
whole folder within 10 % of half of it). The figures are the machine's own: rerun on a quiet one.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import machine, verdict, write_section

SIZE, BATCH, WORKERS = 224, 64, 2
SPEEDUP_GOAL, MEMORY_GOAL = 5.0, 1.10


def make_photos(root: Path, count: int, classes: int = 10) -> None:
    """`count` JPEGs of 500x375 (smooth colour fields with grain, about as compressible as photos)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:375, 0:500] / 500.0
    for i in range(count):
        folder = root / f"class_{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        a, b, c = rng.uniform(0, 6, 3)
        fields = [np.sin(a * x + b * y + c + k) for k in range(3)]
        pixels = np.stack(fields, axis=-1) * 90 + 128 + rng.normal(0, 12, (375, 500, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(folder / f"{i:05d}.jpg", quality=85)


def _anon_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


class PeakAnon:
    """The peak of this process tree's summed RssAnon while the block runs, sampled every 20 ms."""

    def __enter__(self) -> PeakAnon:
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        self.peak = max(self.peak, sum(_anon_kib(p) for p in _tree(os.getpid())))

    def _watch(self) -> None:
        self._sample()
        while not self._stop.wait(0.02):
            self._sample()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def _epoch_rate(batches: Any) -> float:
    began, seen = time.perf_counter(), 0
    for x, _ in batches:
        seen += len(x)
    return seen / (time.perf_counter() - began)


# ------------------------------------------------------------------------------- children (fresh processes)
def plain_child(root: str, epochs: int) -> dict[str, Any]:
    import torch
    from torchvision import datasets, transforms

    torch.set_num_threads(1)
    data = datasets.ImageFolder(root, transform=transforms.Compose([
        transforms.Resize((SIZE, SIZE), interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.PILToTensor()]))
    loader = torch.utils.data.DataLoader(data, batch_size=BATCH, shuffle=True, num_workers=WORKERS)
    return {"rates": [_epoch_rate(loader) for _ in range(epochs)]}


def _split(root: str, files: int | None = None) -> Any:
    import torch

    from autotune.vision.data import FileSplit
    from autotune.vision.datasets import image_folder

    torch.set_num_threads(1)
    images = image_folder(root, image_size=SIZE, memory_limit_mb=0, workers=WORKERS)
    x, y = images.x, images.y
    if files is not None:
        x, y = x.take(np.arange(files)), y[:files]
    return FileSplit(x, y)


def cached_child(root: str, epochs: int, files: int | None = None) -> dict[str, Any]:
    import torch

    from autotune.vision.folder_cache import FolderCache

    began = time.perf_counter()
    split = _split(root, files)  # every file decoded once here, into the cache, before any epoch
    loaded = time.perf_counter() - began
    generator = torch.Generator().manual_seed(0)
    rates, peaks = [], []
    for _ in range(epochs):
        with PeakAnon() as memory:
            rates.append(_epoch_rate(split.batches(BATCH, generator=generator)))
        peaks.append(memory.peak / 1024)
    images = split.images
    cache = FolderCache.open(images.cache_key, images.total, (images.channels, SIZE, SIZE))
    first = len(images) / (loaded + len(images) / rates[0])  # the load's decoding counts as the first epoch's
    return {"rates": [first, *rates[1:]], "load_s": loaded, "anon_peak_mib": peaks, "decodes": cache.decodes,
            "files": len(images)}


def _child(kind: str, cache: Path, *args: Any) -> subprocess.Popen:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return subprocess.Popen([sys.executable, __file__, "--child", json.dumps([kind, *args])], env=env,
                            stdout=subprocess.PIPE, text=True)


def _result(process: subprocess.Popen) -> dict[str, Any]:
    out, _ = process.communicate()
    if process.returncode:
        raise RuntimeError(f"bench child failed with {process.returncode}")
    return json.loads(out.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------------- measure
def measure(images: int, work: Path) -> dict[str, Any]:
    photos = work / "photos"
    began = time.perf_counter()
    make_photos(photos, images)
    made = time.perf_counter() - began
    megabytes = sum(p.stat().st_size for p in photos.rglob("*.jpg")) / 2**20
    plain = _result(_child("plain", work / "cache_plain", str(photos), 2))
    cached = _result(_child("cached", work / "cache_one", str(photos), 3))
    pair = [_child("cached", work / "cache_two", str(photos), 1) for _ in range(2)]
    both = [_result(p) for p in pair]
    half = _result(_child("cached", work / "cache_half", str(photos), 2, images // 2))
    plain_rate = float(np.median(plain["rates"]))
    later = float(np.median(cached["rates"][1:]))
    memory_ratio = cached["anon_peak_mib"][-1] / half["anon_peak_mib"][-1]
    return {
        "images": images, "folder_mib": megabytes, "made_s": made, "plain_rates": plain["rates"],
        "cached_rates": cached["rates"], "load_s": cached["load_s"], "speedup": later / plain_rate,
        "first_epoch_ratio": cached["rates"][0] / plain_rate,
        "two_trials_decodes": both[0]["decodes"], "two_trials_rates": [b["rates"][0] for b in both],
        "anon_half_mib": half["anon_peak_mib"][-1], "anon_whole_mib": cached["anon_peak_mib"][-1],
        "memory_ratio": memory_ratio,
        "met": {"speed": later / plain_rate >= SPEEDUP_GOAL, "decodes": both[0]["decodes"] == images,
                "memory": memory_ratio <= MEMORY_GOAL},
    }


def render(r: dict[str, Any], info: dict[str, Any], minutes: float) -> str:
    met = r["met"]
    return "\n".join([
        "## Image folders of real size: decoded once, read from a memory-mapped cache",
        "",
        f"Command: `python bench/image_folder.py` ({minutes:.1f} minutes, {time.strftime('%Y-%m-%d %H:%M')}; load "
        f"average {info['load_average']:.2f} at the start). {r['images']:,} JPEG photos of 500x375 "
        f"({r['folder_mib']:.0f} MiB) in 10 class folders, read at {SIZE} px: batches of {BATCH} uint8 images, "
        f"{WORKERS} DataLoader workers, each reader a fresh process. Plain: torchvision `ImageFolder` + "
        "`DataLoader` with `Resize((224, 224))` (bilinear) + `PILToTensor`, decoding every epoch. Cached: the "
        "engine's `image_folder` streamed (`memory_limit_mb: 0`), decoding every file into "
        "`autotune.vision.folder_cache` when the data loads, before any trial (a damaged file is skipped there), "
        "which counts here as its first epoch; once filled, its batches are sliced out of the file. The recipe "
        "augments on the batch, "
        "after the loader (random crops, flips), so neither pipeline here augments. The cached epochs read a file "
        "the OS still holds in its page cache, as it does between a search's epochs while memory allows.",
        "",
        "| measure | result | goal | verdict |",
        "|---|---|---|---|",
        f"| images/s | plain {', '.join(f'{v:.0f}' for v in r['plain_rates'])} per epoch; cached load and first "
        f"epoch {r['cached_rates'][0]:.0f} ({r['first_epoch_ratio']:.2f}x plain; the load {r['load_s']:.1f} s), "
        "later "
        f"{', '.join(f'{v:.0f}' for v in r['cached_rates'][1:])} (**{r['speedup']:.1f}x** plain) | cached epochs "
        f">= {SPEEDUP_GOAL:.0f}x plain | {verdict(met['speed'])} |",
        f"| decodes, 2 trials loading at once from an empty cache | {r['two_trials_decodes']:,} for "
        f"{r['images']:,} images (loads and first epochs at {', '.join(f'{v:.0f}' for v in r['two_trials_rates'])} "
        "images/s) | each image once | "
        f"{verdict(met['decodes'])} |",
        f"| anonymous memory of a reader (peak, cached epoch) | {r['anon_half_mib']:.0f} MiB for half the folder, "
        f"{r['anon_whole_mib']:.0f} MiB for all of it ({r['memory_ratio']:.2f}x) | flat: <= {MEMORY_GOAL:.2f}x | "
        f"{verdict(met['memory'])} |",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md alone")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = json.loads(args.child)
        print(json.dumps({"plain": plain_child, "cached": cached_child}[kind](*rest)))
        return 0
    info, began = machine(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="autotune-bench-folder-") as work:
        result = measure(args.images, Path(work))
    body = render(result, info, (time.perf_counter() - began) / 60)
    print(body)
    if not args.no_write:
        write_section("image_folder", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
