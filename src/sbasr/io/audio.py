"""Decoding audio: any format PyAV (FFmpeg) reads, any rate, to 16 kHz float32.

faster-whisper's own `decode_audio` mixes down or splits stereo only; calls often carry
more channels, so the resampling here keeps every channel when asked to.
"""

from __future__ import annotations

import os
import stat
import struct
import warnings
from dataclasses import dataclass

import numpy as np

from ..core.constants import SAMPLE_RATE
from ..core.errors import SbasrError


@dataclass
class Audio:
    """One recording as 16 kHz float32 channels (one array when mixed down)."""

    path: str
    channels: list[np.ndarray]

    @property
    def duration(self) -> float:
        return len(self.channels[0]) / SAMPLE_RATE if self.channels else 0.0


def load_audio(path: str | os.PathLike[str], split_channels: bool = False) -> Audio:
    """Decode an audio file to 16 kHz float32.

    A WAV file shorter than its header says (an interrupted copy or recording) is a warning:
    FFmpeg decodes what is there without a word.

    Args:
        path: The file, in any format FFmpeg reads.
        split_channels: Keep each channel apart instead of mixing down to mono.

    Returns:
        The channels' samples.

    Raises:
        SbasrError: The file is missing or cannot be decoded.
    """
    import av

    check_regular(path)
    try:
        container = av.open(str(path))
    except FileNotFoundError:
        raise SbasrError(f"{path}: no such file") from None
    except Exception as e:  # PyAV raises many kinds: all mean "cannot read this"
        raise SbasrError(f"{path}: cannot decode audio: {_reason(e)}") from None
    with container:
        streams = container.streams.audio
        if not streams:
            raise SbasrError(f"{path}: no audio stream")
        stream = streams[0]
        layout = stream.layout.name if split_channels else "mono"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=SAMPLE_RATE)
        # Fill one array sized from the container's duration rather than concatenating
        # frames at the end, which would hold an hour of audio twice.
        n_channels = len(stream.layout.channels) if split_channels else 1
        expected = int((container.duration or 0) / 1_000_000 * SAMPLE_RATE) + SAMPLE_RATE
        data = np.empty((n_channels, max(expected, SAMPLE_RATE)), dtype=np.float32)
        filled = 0
        try:
            for frame in container.decode(stream):
                frame.pts = None  # let the resampler count; broken timestamps are common
                for out in resampler.resample(frame):
                    data, filled = _append(data, filled, out.to_ndarray())
            for out in resampler.resample(None):
                data, filled = _append(data, filled, out.to_ndarray())
        except Exception as e:
            raise SbasrError(f"{path}: cannot decode audio: {_reason(e)}") from None
    if filled == 0:
        raise SbasrError(f"{path}: the audio stream is empty")
    cut = truncated_wav(path)
    if cut is not None:
        warnings.warn(
            f"{path}: the file is truncated: its header says {cut[0]:.2f} s, it holds "
            f"{cut[1]:.2f} s; transcribing what is there",
            UserWarning,
            stacklevel=2,
        )
    data = data[:, :filled]
    return Audio(str(path), [np.ascontiguousarray(ch) for ch in data])


def check_regular(path: str | os.PathLike[str]) -> None:
    """Refuse what is not a regular file (a FIFO, `<(...)`, a device, a socket) before
    opening it: decoding opens a file more than once, and a FIFO would block forever.

    Raises:
        SbasrError: `path` exists and is not a regular file.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return  # opening it says what is wrong
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        kind = "a FIFO or pipe" if stat.S_ISFIFO(mode) else "a device or socket"
        raise SbasrError(
            f"{path}: not a regular file ({kind}); audio is read more than once, so save "
            "it to a file first"
        )


def truncated_wav(path: str | os.PathLike[str]) -> tuple[float, float] | None:
    """(seconds the header declares, seconds the file holds) of a WAV file cut short; None
    for a whole file, a header that declares no length (streamed WAV, RF64), or another
    format."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:] != b"WAVE":
                return None
            order = "<" if head[:4] == b"RIFF" else ">"
            size = os.fstat(f.fileno()).st_size
            byte_rate = 0
            while len(chunk := f.read(8)) == 8:
                name, n = chunk[:4], struct.unpack(f"{order}I", chunk[4:])[0]
                if name == b"data":
                    present = size - f.tell()
                    if not byte_rate or n in (0, 0xFFFFFFFF) or n - present <= byte_rate // 100:
                        return None
                    return n / byte_rate, present / byte_rate
                body = f.read(min(n, 16)) if name == b"fmt " else b""
                if len(body) >= 12:
                    byte_rate = struct.unpack(f"{order}I", body[8:12])[0]
                f.seek(n - len(body) + (n & 1), os.SEEK_CUR)  # chunks are padded to even sizes
    except OSError:
        return None
    return None


def _append(data: np.ndarray, filled: int, chunk: np.ndarray) -> tuple[np.ndarray, int]:
    n = chunk.shape[1]
    if filled + n > data.shape[1]:  # the duration was unknown or wrong: grow by half
        grown = np.empty((data.shape[0], max(filled + n, data.shape[1] * 3 // 2)), np.float32)
        grown[:, :filled] = data[:, :filled]
        data = grown
    data[:, filled : filled + n] = chunk
    return data, filled + n


def _reason(error: Exception) -> str:
    # FFmpeg's errors carry its own codes as errno ("[Errno 1094995529] Invalid data ..."):
    # the words alone say it.
    text = getattr(error, "strerror", None) or str(error)
    return text.splitlines()[0] if text else type(error).__name__


def load_range(path: str | os.PathLike[str], start: float | None, end: float | None) -> np.ndarray:
    """Mono 16 kHz samples of a stretch of a file.

    Only that stretch is read where libsndfile can seek (wav, flac, ogg): a short segment of
    a long call must not decode the whole call.

    Args:
        path: The file.
        start: Its first second; None: the file's start.
        end: Its last second; None: the file's end.

    Returns:
        The samples.

    Raises:
        SbasrError: A file libsndfile cannot open and FFmpeg cannot decode either.
    """
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:  # not a libsndfile format (mp3, m4a, video): decode it all
        audio = load_audio(path).channels[0]
        if start is None:
            return audio
        stop = int(end * SAMPLE_RATE) if end is not None else None
        return audio[int(start * SAMPLE_RATE) : stop]
    first = int((start or 0.0) * info.samplerate)
    stop = int(end * info.samplerate) if end is not None else None
    data, rate = sf.read(str(path), start=first, stop=stop, dtype="float32", always_2d=True)
    return resample(data.mean(axis=1), rate)


def resample(samples: np.ndarray, rate: float, target: int = SAMPLE_RATE) -> np.ndarray:
    """`samples` taken at `rate` as if taken at `target` (FFmpeg's resampler, via PyAV).

    Also speed perturbation: reading 16 kHz audio as if it were at 16 kHz x 1.1 makes it
    1.1 times faster (and higher)."""
    if rate == target or len(samples) == 0:
        return np.ascontiguousarray(samples, dtype=np.float32)
    import av

    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples, dtype=np.float32)[None, :], format="fltp", layout="mono"
    )
    frame.sample_rate = round(rate)
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=target)
    parts = [f.to_ndarray()[0] for f in resampler.resample(frame)]
    parts += [f.to_ndarray()[0] for f in resampler.resample(None)]
    return np.concatenate(parts).astype(np.float32, copy=False) if parts else samples[:0]


def distinct_clips(clips: list[np.ndarray]) -> tuple[list[np.ndarray], list[int]]:
    """The clips with repeats (the same array object) removed, and each input's index
    into them: scoring two texts against one clip encodes it once."""
    slot: dict[int, int] = {}
    unique: list[np.ndarray] = []
    index = []
    for clip in clips:
        if id(clip) not in slot:
            slot[id(clip)] = len(unique)
            unique.append(clip)
        index.append(slot[id(clip)])
    return unique, index
