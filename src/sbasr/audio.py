"""Decoding audio: any format PyAV (FFmpeg) reads, any rate, to 16 kHz float32.

faster-whisper's own `decode_audio` mixes down or splits stereo only; calls often carry
more channels, so the resampling here keeps every channel when asked to.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .errors import SbasrError

SAMPLE_RATE = 16_000


@dataclass
class Audio:
    """One recording as 16 kHz float32 channels (one array when mixed down)."""

    path: str
    channels: list[np.ndarray]

    @property
    def duration(self) -> float:
        return len(self.channels[0]) / SAMPLE_RATE if self.channels else 0.0


def load_audio(path: str | os.PathLike[str], split_channels: bool = False) -> Audio:
    """Decode `path`; mixed down to mono unless `split_channels`."""
    import av

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
    data = data[:, :filled]
    return Audio(str(path), [np.ascontiguousarray(ch) for ch in data])


def _append(data: np.ndarray, filled: int, chunk: np.ndarray) -> tuple[np.ndarray, int]:
    n = chunk.shape[1]
    if filled + n > data.shape[1]:  # the duration was unknown or wrong: grow by half
        grown = np.empty((data.shape[0], max(filled + n, data.shape[1] * 3 // 2)), np.float32)
        grown[:, :filled] = data[:, :filled]
        data = grown
    data[:, filled : filled + n] = chunk
    return data, filled + n


def _reason(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
