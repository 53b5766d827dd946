"""Prediction on a video with PyAV (FFmpeg): an overlay video at the input's frame rate and the
keypoints of every frame in one JSON file. Frames stream through; memory stays at one batch."""

from __future__ import annotations

import contextlib
import json
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..ops.arrays import as_numpy
from ..ops.atomic import atomic_dir, atomic_path, write_text
from ..ops.errors import InputError
from ..vis.overlay import overlay
from .batched import BatchedPredictor
from .writers import OutputSpec, frame_file, keypoints_record, write_outputs


class VideoError(InputError):
    pass


def _encoder(container, fps: Fraction, width: int, height: int):
    import av
    codec = next(c for c in ("libx264", "mpeg4") if c in av.codecs_available)
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    return stream


def predict_video(predictor: BatchedPredictor, path: Path, overlay_path: Path | None, keypoints_path: Path | None,
                  spec: OutputSpec, tick: Callable[[int], None] | None = None,
                  frame_dirs: dict[str, Path] | None = None) -> int:
    """Writes the overlay video (``.mp4``), the per-frame keypoints JSON and, for each kind in
    ``frame_dirs`` (``iuv``, ``parsing``, ``mask`` ...), that kind's file of every frame into its
    folder; returns the number of frames. Raises VideoError naming the file if it cannot be decoded."""
    import av

    records, frames_done = [], 0
    try:
        source = av.open(str(path))
    except (av.FFmpegError, OSError) as err:
        raise VideoError(f"{path}: cannot open video ({err})") from err
    with source, (atomic_path(overlay_path) if overlay_path else contextlib.nullcontext()) as tmp, \
            contextlib.ExitStack() as folders:
        # Each frame folder is filled under a temporary name and takes its own only when every frame
        # is written: a video that fails half-way leaves none, and an earlier run's is replaced whole.
        staged = {kind: folders.enter_context(atomic_dir(folder)) for kind, folder in (frame_dirs or {}).items()}
        if not source.streams.video:
            raise VideoError(f"{path}: no video stream")
        stream = source.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate or Fraction(25)
        sink, out_stream = (av.open(str(tmp), "w"), None) if overlay_path else (None, None)
        try:
            batch: list[tuple[torch.Tensor, str]] = []

            def flush() -> None:
                nonlocal out_stream, frames_done
                for (image, name), result in zip(batch, predictor.predict_tensors(batch)):
                    if keypoints_path is not None and result.keypoints is not None:
                        records.append({"frame": frames_done, "time": round(frames_done / float(fps), 4),
                                        **keypoints_record(result)})
                    if staged:
                        write_outputs(result, image, {kind: frame_file(folder, kind, frames_done)
                                                      for kind, folder in staged.items()}, spec)
                    if sink is not None:
                        picture = overlay(as_numpy(image.permute(1, 2, 0)), result, spec.space, spec.min_score,
                                          all_classes=True)
                        h, w = picture.shape[:2]
                        picture = np.pad(picture, ((0, h % 2), (0, w % 2), (0, 0)), constant_values=255)
                        if out_stream is None:
                            out_stream = _encoder(sink, fps, picture.shape[1], picture.shape[0])
                        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
                        for packet in out_stream.encode(frame):
                            sink.mux(packet)
                    frames_done += 1
                if tick:
                    tick(len(batch))
                batch.clear()

            for frame in source.decode(stream):
                rgb = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1).contiguous()
                batch.append((rgb, f"{path}#frame{frames_done + len(batch)}"))
                if len(batch) == predictor.batch_size:
                    flush()
            if batch:
                flush()
            if out_stream is not None:
                for packet in out_stream.encode():
                    sink.mux(packet)
        except av.FFmpegError as err:
            raise VideoError(f"{path}: cannot decode video after {frames_done} frames ({err})") from err
        finally:
            if sink is not None:
                sink.close()
        if frames_done == 0:
            raise VideoError(f"{path}: the video has no frames")
    if keypoints_path is not None and records:
        write_text(keypoints_path, json.dumps({"video": str(path), "fps": float(fps), "frames": records}) + "\n")
    return frames_done
