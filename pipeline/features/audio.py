"""Audio front ends: VGGish's log-mel examples and seed 003's log-mel spectrogram and onsets.

Both take mono audio at :data:`SAMPLE_RATE` (16 kHz) and work on one-second segments: one
segment is ``SAMPLE_RATE`` samples, and segment ``t`` starts at sample ``16000 t``.

**VGGish** (Hershey et al. 2017, the audio extractor of seed 004 §5.1): a magnitude STFT
with a 25 ms periodic Hann window (400 samples), a 10 ms hop (160) and a 512-point FFT,
without padding; 64 mel bands from 125 to 7500 Hz on the HTK mel scale, whose triangles
are linear *in mel* and which give the DC bin no weight; then ``log(mel + 0.01)``; then
examples of 96 frames (0.96 s). These are the constants of the public VGGish release
(``vggish_params.py``, ``mel_features.py``), written here with numpy.

One example per one-second segment: example ``t`` is frames ``100 t`` to ``100 t + 95``,
i.e. the 0.96 s that start at second ``t``. The release's own ``waveform_to_examples``
steps its examples by 0.96 s, so that its ``k``-th example starts ``0.04 k`` s before
segment ``k``; we align every example with its segment instead (a choice; the AVE paper
only says "each 1s audio is transformed into a log-Mel spectrogram").

**Seed 003 §B**: "STFT is computed using n_fft = 512, hop_length = 160, win_length = 320,
window = hann_window(320), center = True and pad_mode = reflect and 1000×80 log-mel
spectrogram is produced with 80 mel filterbanks by using PyTorch". The paper does not give
the spectrogram power, the mel scale or the log offset; we take torchaudio's defaults
(power 2, HTK mel scale from 0 Hz to the Nyquist frequency, no filter normalisation) and
``log(mel + 1e-6)``. Ten seconds give 1001 centred frames, of which the first 1000 are kept
(100 per second, the "1000×80" of the paper). "Audio onsets are computed using librosa
onset detection function with a precomputed onset envelopes": the envelope is librosa's
``onset_strength`` of the dB-scaled mel spectrogram (told the FFT size of §B, 512, so that
its centring shift is the one of these frames, not of librosa's default 2048), and the
onsets are librosa's ``onset_detect`` on that envelope.
"""

import numpy as np
import torch

from pipeline.errors import PipelineError

SAMPLE_RATE = 16000

# VGGish (vggish_params.py of the public release).
VGGISH_WINDOW = 400  # 25 ms
VGGISH_HOP = 160  # 10 ms
VGGISH_FFT = 512  # 2 ** ceil(log2(400))
VGGISH_MELS = 64
VGGISH_MEL_MIN_HZ = 125.0
VGGISH_MEL_MAX_HZ = 7500.0
VGGISH_LOG_OFFSET = 0.01
VGGISH_EXAMPLE_FRAMES = 96  # 0.96 s

# Seed 003 §B.
SEED003_FFT = 512
SEED003_HOP = 160
SEED003_WINDOW = 320
SEED003_MELS = 80
SEED003_LOG_EPS = 1e-6
FRAMES_PER_SECOND = SAMPLE_RATE // SEED003_HOP  # 100 log-mel frames per segment


def _check_waveform(waveform: np.ndarray, segments: int) -> np.ndarray:
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1 or waveform.size < segments * SAMPLE_RATE:
        raise PipelineError(
            f"audio: expected a mono waveform of at least {segments} s at {SAMPLE_RATE} Hz "
            f"({segments * SAMPLE_RATE} samples), found shape {waveform.shape}"
        )
    return waveform


def hertz_to_mel(hertz: np.ndarray) -> np.ndarray:
    r"""HTK mel scale: :math:`m = 1127 \ln(1 + f / 700)`."""
    return 1127.0 * np.log1p(np.asarray(hertz, dtype=np.float64) / 700.0)


def vggish_mel_matrix(
    n_mels: int = VGGISH_MELS,
    n_bins: int = VGGISH_FFT // 2 + 1,
    low_hz: float = VGGISH_MEL_MIN_HZ,
    high_hz: float = VGGISH_MEL_MAX_HZ,
) -> np.ndarray:
    r"""VGGish's mel weight matrix: triangles linear in mel, DC bin zeroed.

    Band :math:`j` has edges :math:`(e_j, e_{j+1}, e_{j+2})` of ``n_mels + 2`` equally
    spaced mel values from ``low_hz`` to ``high_hz``; an FFT bin at mel :math:`m` gets
    :math:`\max(0, \min(\frac{m - e_j}{e_{j+1} - e_j}, \frac{e_{j+2} - m}{e_{j+2} - e_{j+1}}))`.

    Args:
        n_mels: number of mel bands (default 64).
        n_bins: FFT bins from 0 Hz to the Nyquist frequency (default 257).
        low_hz: lower edge of the first band (default 125).
        high_hz: upper edge of the last band (default 7500).

    Returns:
        ``(n_bins, n_mels)`` float64 weights.
    """
    bins_mel = hertz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, n_bins))[:, None]  # (F, 1)
    edges = np.linspace(hertz_to_mel(low_hz), hertz_to_mel(high_hz), n_mels + 2)  # (M + 2,)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]  # (M,) each
    rising = (bins_mel - lower) / (centre - lower)  # (F, M)
    falling = (upper - bins_mel) / (upper - centre)  # (F, M)
    weights = np.maximum(0.0, np.minimum(rising, falling))  # (F, M)
    weights[0, :] = 0.0
    return weights


def _frames(signal: np.ndarray, length: int, hop: int) -> np.ndarray:
    """Non-padded frames ``(1 + (len - length) // hop, length)`` of a 1-D signal."""
    windows = np.lib.stride_tricks.sliding_window_view(signal, length)  # (len - length + 1, L)
    return windows[::hop]


def vggish_log_mel(waveform: np.ndarray) -> np.ndarray:
    """VGGish's log-mel spectrogram of a 16 kHz mono waveform.

    Args:
        waveform: ``(samples,)`` audio in ``[-1, 1]``, at least 400 samples.

    Returns:
        ``(frames, 64)`` float32, ``frames = 1 + (samples - 400) // 160``.
    """
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(VGGISH_WINDOW) / VGGISH_WINDOW)
    frames = _frames(np.asarray(waveform, dtype=np.float64), VGGISH_WINDOW, VGGISH_HOP)
    spectrum = np.abs(np.fft.rfft(frames * window, n=VGGISH_FFT))  # (N, 257)
    mel = spectrum @ vggish_mel_matrix()  # (N, 64)
    return np.log(mel + VGGISH_LOG_OFFSET).astype(np.float32)


def vggish_examples(waveform: np.ndarray, segments: int) -> np.ndarray:
    """One VGGish input example per one-second segment: the 0.96 s starting at second ``t``.

    Args:
        waveform: ``(samples,)`` 16 kHz mono audio covering at least ``segments`` seconds.
        segments: number of one-second segments ``T``.

    Returns:
        ``(T, 96, 64)`` float32 log-mel examples.
    """
    waveform = _check_waveform(waveform, segments)
    log_mel = vggish_log_mel(waveform[: segments * SAMPLE_RATE])  # (100 T - 1, 64)
    starts = np.arange(segments) * (SAMPLE_RATE // VGGISH_HOP)  # (T,)
    index = starts[:, None] + np.arange(VGGISH_EXAMPLE_FRAMES)  # (T, 96)
    return log_mel[index]


def seed003_mel_matrix(n_mels: int = SEED003_MELS, n_bins: int = SEED003_FFT // 2 + 1):
    """Triangular HTK-mel filters from 0 Hz to Nyquist, linear in Hz, unnormalised.

    The filter bank of ``torchaudio.functional.melscale_fbanks`` with its defaults.

    Returns:
        ``(n_bins, n_mels)`` float32 tensor.
    """
    freqs = np.linspace(0.0, SAMPLE_RATE / 2, n_bins)  # (F,)
    mel_points = np.linspace(0.0, hertz_to_mel(SAMPLE_RATE / 2), n_mels + 2)  # (M + 2,)
    hz_points = 700.0 * np.expm1(mel_points / 1127.0)  # (M + 2,)
    widths = np.diff(hz_points)  # (M + 1,)
    slopes = hz_points[None, :] - freqs[:, None]  # (F, M + 2)
    rising = -slopes[:, :-2] / widths[:-1]  # (F, M)
    falling = slopes[:, 2:] / widths[1:]  # (F, M)
    return torch.from_numpy(np.maximum(0.0, np.minimum(rising, falling))).float()


def seed003_mel_power(waveform: np.ndarray, segments: int) -> np.ndarray:
    """The mel power spectrogram of seed 003 §B, 100 frames per segment.

    Args:
        waveform: ``(samples,)`` 16 kHz mono audio covering at least ``segments`` seconds.
        segments: number of one-second segments ``T``.

    Returns:
        ``(100 T, 80)`` float32 mel power.
    """
    waveform = _check_waveform(waveform, segments)[: segments * SAMPLE_RATE]
    spectrum = torch.stft(
        torch.from_numpy(waveform),
        n_fft=SEED003_FFT,
        hop_length=SEED003_HOP,
        win_length=SEED003_WINDOW,
        window=torch.hann_window(SEED003_WINDOW),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )  # (257, 100 T + 1)
    power = spectrum.abs().square().T[: segments * FRAMES_PER_SECOND]  # (100 T, 257)
    return (power @ seed003_mel_matrix()).numpy()  # (100 T, 80)


def seed003_log(mel_power: np.ndarray) -> np.ndarray:
    """The log compression of seed 003's front end: ``log(mel + 1e-6)``."""
    return np.log(mel_power + SEED003_LOG_EPS)


def seed003_log_mel(waveform: np.ndarray, segments: int) -> np.ndarray:
    """Seed 003 §B's log-mel spectrogram: ``(100 T, 80)`` float32 (1000 x 80 for 10 s)."""
    return seed003_log(seed003_mel_power(waveform, segments))


def onsets(mel_power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """librosa's onset envelope of a mel power spectrogram and the onsets detected on it.

    librosa is imported here, not at module level: its onset module takes seconds to load.

    Args:
        mel_power: ``(frames, n_mels)`` mel power at 100 frames per second.

    Returns:
        ``(envelope, is_onset)``: ``(frames,)`` float32 onset strength and ``(frames,)``
        bool, true at the frames ``librosa.onset.onset_detect`` returns.
    """
    import librosa

    log_power = librosa.power_to_db(np.asarray(mel_power, dtype=np.float32).T)  # (M, N)
    envelope = librosa.onset.onset_strength(
        S=log_power, sr=SAMPLE_RATE, hop_length=SEED003_HOP, n_fft=SEED003_FFT
    )
    found = librosa.onset.onset_detect(
        onset_envelope=envelope, sr=SAMPLE_RATE, hop_length=SEED003_HOP, units="frames"
    )
    is_onset = np.zeros(envelope.shape, dtype=bool)  # (N,)
    is_onset[found] = True
    return envelope.astype(np.float32), is_onset
