"""Frames in and out of ``styletransfer video``: video files through PyAV (its wheels carry FFmpeg), or folders of
numbered PNG/JPEG frames. Only the video command imports this module, so the rest of the client never loads PyAV.

A video's audio is copied into the output (or re-encoded, when the output's container cannot hold its codec),
interleaved with the stylized frames as they are written, so memory does not grow with the video's length.
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

__all__ = ["DEFAULT_FPS", "FRAME_SUFFIXES", "VIDEO_CODECS", "FrameSink", "open_sink", "open_source"]

#: Output video containers by extension, with the video codec written into them.
VIDEO_CODECS = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")
#: The rate of a video made from a folder of frames, which says none.
DEFAULT_FPS = Fraction(24)
#: JPEG quality of the frames sent to the server and of the stylized frames it returns for a video output (the
#: video is lossy anyway; JPEG is several times faster to encode than PNG).
JPEG_QUALITY = 95
_CRF = {"libx264": "18", "libvpx-vp9": "31"}
_NUMBER = re.compile(r"\d+")


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_CODECS


def frame_paths(folder: Path) -> list[Path]:
    """The folder's PNG/JPEG files in frame order: by the last number in their names (frame_2 before frame_10)."""
    numbered = []
    for path in folder.iterdir():
        if path.suffix.lower() not in FRAME_SUFFIXES or not path.is_file():
            continue
        numbers = _NUMBER.findall(path.stem)
        if not numbers:
            raise ValueError(f"{path}: frames need a number in their names (frame_0001.png)")
        numbered.append((int(numbers[-1]), path.name, path))
    if not numbered:
        raise ValueError(f"{folder}: no PNG or JPEG frames")
    return [path for *_, path in sorted(numbered)]


def shorter_side_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the shorter side ``size``, the longer one truncated as the server's content_size does."""
    short, long = min(width, height), max(width, height)
    new_long = int(size * long / short)
    return (size, new_long) if width <= height else (new_long, size)


class FrameSource(Protocol):
    rate: Fraction  # frames per second of the output
    count: int | None  # frames to expect (for the progress bar); None when unknown
    names: list[str] | None  # the frames' names, kept by a folder output
    audio: Path | None  # the file whose audio goes into a video output

    def frames(self) -> Iterator[bytes]:
        """Each frame, encoded (PNG or JPEG)."""
        ...


class FolderSource:
    """Numbered PNG/JPEG files, sent as they are."""

    def __init__(self, folder: Path, fps: float | None) -> None:
        self.paths = frame_paths(folder)
        self.rate = Fraction(fps).limit_denominator(1001) if fps else DEFAULT_FPS
        self.count = len(self.paths)
        self.names = [path.stem for path in self.paths]
        self.audio = None

    def frames(self) -> Iterator[bytes]:
        for path in self.paths:
            yield path.read_bytes()


class VideoSource:
    """A video file's frames, decoded by FFmpeg (scaled down to ``size`` there, when given), as JPEG. With ``fps``,
    frames are taken at that rate: output frame k shows the input frame on screen at time k / fps."""

    def __init__(self, path: Path, fps: float | None, size: int | None) -> None:
        import av

        self.path = path
        self._size = size
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            stream = container.streams.video[0]
            self._native = Fraction(stream.average_rate or stream.guessed_rate or DEFAULT_FPS)
            self._resample = bool(fps)
            self.rate = Fraction(fps).limit_denominator(1001) if fps else self._native
            seconds = container.duration / 1e6 if container.duration else None
            self.count = round(seconds * self.rate) if seconds and fps else (stream.frames or None)
            self.audio = path if container.streams.audio else None
        self.names = None

    def frames(self) -> Iterator[bytes]:
        import av

        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            decoded = (self._encode(frame) for frame in container.decode(stream))
            yield from (at_rate(decoded, self._native, self.rate) if self._resample else (d for _, d in decoded))

    def _encode(self, frame: Any) -> tuple[float | None, bytes]:
        kwargs = {}
        if self._size and min(frame.width, frame.height) > self._size:  # only ever down: the server's size rules
            kwargs = dict(zip(("width", "height"), shorter_side_size(frame.width, frame.height, self._size),
                              strict=True))
        buffer = io.BytesIO()
        frame.to_image(**kwargs).save(buffer, format="JPEG", quality=JPEG_QUALITY)
        return frame.time, buffer.getvalue()


def at_rate(frames: Iterator[tuple[float | None, bytes]], native: Fraction, rate: Fraction) -> Iterator[bytes]:
    """(time, frame) pairs of a video at ``native`` fps, as frames at ``rate``: output frame k shows the input frame
    on screen at k / rate, so input frames are skipped (a lower rate) or repeated (a higher one) and the duration
    stays the input's. A missing time is taken from the frame's index."""
    start = shown_at = 0.0
    shown: bytes | None = None
    emitted = 0
    for index, (time, data) in enumerate(frames):
        time = float(index / native) if time is None else time
        start = time if shown is None else start
        while shown is not None and emitted / rate < time - start - 1e-6:
            yield shown
            emitted += 1
        shown, shown_at = data, time
    end = shown_at - start + 1 / native  # the last input frame stays on screen for one input frame
    while shown is not None and emitted / rate < end - 1e-6:
        yield shown
        emitted += 1


def open_source(path: str | os.PathLike, *, fps: float | None, size: int | None) -> FrameSource:
    source = Path(path)
    if source.is_dir():
        return FolderSource(source, fps)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such video file or folder of frames")
    if not is_video(source):
        raise ValueError(f"{source}: not a video this command reads ({', '.join(VIDEO_CODECS)}) nor a folder")
    return VideoSource(source, fps, size)


class FrameSink(Protocol):
    def write(self, image: bytes) -> None:
        """Adds the next stylized frame (encoded)."""
        ...

    def close(self, completed: bool = True) -> None:
        """Finishes the output; ``completed=False`` (an error midway) leaves no partial video behind."""
        ...


class FolderSink:
    """PNG frames: the input frames' names, or 000000.png, 000001.png, ..."""

    def __init__(self, folder: Path, names: list[str] | None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._folder = folder
        self._names = names
        self._index = 0

    def write(self, image: bytes) -> None:
        name = self._names[self._index] if self._names else f"{self._index:06d}"
        Image.open(io.BytesIO(image)).save(self._folder / f"{name}.png")
        self._index += 1

    def close(self, completed: bool = True) -> None:
        pass


class VideoSink:
    """A video file at ``rate``, written under a temporary name and moved into place when complete, with the audio
    of ``audio_from`` (when given) interleaved as the frames are written."""

    def __init__(self, path: Path, rate: Fraction, audio_from: Path | None) -> None:
        import av

        self._path = path
        self._partial = path.with_name(f".{path.stem}.partial{path.suffix}")
        self._rate = rate
        self._out = av.open(str(self._partial), "w")
        self._video: Any = None
        self._audio = _Audio(self._out, audio_from) if audio_from is not None else None
        self._index = 0

    def write(self, image: bytes) -> None:
        import av

        picture = Image.open(io.BytesIO(image)).convert("RGB")
        if self._video is None:
            self._video = self._add_video(*picture.size)
        width, height = self._video.width, self._video.height
        if picture.size != (width, height):  # 4:2:0 chroma needs even sides: the last odd row or column goes
            picture = picture.crop((0, 0, width, height))
        frame = av.VideoFrame.from_image(picture)
        frame.pts = self._index
        frame.time_base = 1 / self._rate
        self._mux(self._video.encode(frame))
        self._index += 1
        if self._audio is not None:
            self._audio.copy_until(self._index / self._rate)

    def _add_video(self, width: int, height: int) -> Any:
        codec = VIDEO_CODECS[self._path.suffix.lower()]
        stream = self._out.add_stream(codec, rate=self._rate)
        stream.width, stream.height = width - width % 2, height - height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = 1 / self._rate
        stream.options = {"crf": _CRF[codec]}
        return stream

    def _mux(self, packets: Any) -> None:
        for packet in packets:
            self._out.mux(packet)

    def close(self, completed: bool = True) -> None:
        try:
            if completed and self._video is not None:
                self._mux(self._video.encode(None))
                if self._audio is not None:
                    self._audio.copy_until(math.inf)
        finally:
            self._out.close()
            if self._audio is not None:
                self._audio.close()
        if completed and self._video is not None:
            os.replace(self._partial, self._path)
        else:
            self._partial.unlink(missing_ok=True)


class _Audio:
    """The first audio stream of a file, copied packet by packet (or re-encoded to the container's default audio
    codec when the container cannot hold the original) into ``out`` up to a given time."""

    def __init__(self, out: Any, source: Path) -> None:
        import av

        self._out = out
        self._in = av.open(str(source))
        stream = self._in.streams.audio[0]
        self._copy = stream.codec_context.name in out.supported_codecs
        if self._copy:
            self._stream = out.add_stream_from_template(stream)
        else:
            self._stream = out.add_stream(out.default_audio_codec, rate=stream.rate)
        self._packets = self._in.demux(stream)
        self._held: Any = None  # a packet read past the time copied so far
        self._flushed = False

    def copy_until(self, seconds: float) -> None:
        """Muxes the audio that starts before ``seconds``."""
        while True:
            packet = self._held or next(self._packets, None)
            self._held = None
            if packet is None:
                if not self._copy and not self._flushed:  # the encoder's last packets
                    self._mux(self._stream.encode(None))
                    self._flushed = True
                return
            if packet.dts is None:  # the demuxer's final empty packet
                continue
            if packet.pts is not None and float(packet.pts * packet.time_base) >= seconds:
                self._held = packet
                return
            if self._copy:
                packet.stream = self._stream
                self._out.mux(packet)
            else:
                for frame in packet.decode():
                    frame.pts = None
                    self._mux(self._stream.encode(frame))

    def _mux(self, packets: Any) -> None:
        for packet in packets:
            self._out.mux(packet)

    def close(self) -> None:
        self._in.close()


def open_sink(path: str | os.PathLike, source: FrameSource) -> FrameSink:
    target = Path(path)
    if is_video(target):
        return VideoSink(target, source.rate, source.audio)
    if target.suffix and not target.is_dir():
        raise ValueError(f"{target}: write a video ({', '.join(VIDEO_CODECS)}) or a folder (a name without a "
                         "suffix)")
    return FolderSink(target, source.names)
