"""Audio front ends against independent librosa computations and hand-checkable cases."""

import librosa
import numpy as np
import pytest

from pipeline.errors import PipelineError
from pipeline.features.audio import (
    onsets,
    seed003_log_mel,
    seed003_mel_power,
    vggish_examples,
    vggish_log_mel,
    vggish_mel_matrix,
)

SR = 16000


def _noise_and_tone(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    signal = 0.3 * np.sin(2 * np.pi * 660 * t) + 0.1 * rng.standard_normal(t.size)
    return signal.astype(np.float32)


def _librosa_vggish_log_mel(waveform: np.ndarray) -> np.ndarray:
    """VGGish's log-mel written with librosa: its STFT and HTK mel conversion.

    librosa centres a 400-sample window inside its 512-sample frame, 56 samples in; 56
    leading zeros make its frame ``k`` window the samples ``[160 k, 160 k + 400)``. VGGish's
    bands are triangles in mel, built here by interpolation on librosa's mel values.
    """
    padded = np.concatenate([np.zeros(56), waveform.astype(np.float64)])
    spectrum = np.abs(
        librosa.stft(padded, n_fft=512, hop_length=160, win_length=400, center=False)
    ).T  # (N, 257)
    bins_mel = librosa.hz_to_mel(librosa.fft_frequencies(sr=SR, n_fft=512), htk=True)
    edges = np.linspace(librosa.hz_to_mel(125.0, htk=True), librosa.hz_to_mel(7500.0, htk=True), 66)
    weights = np.stack(
        [np.interp(bins_mel, edges[j : j + 3], [0.0, 1.0, 0.0]) for j in range(64)], axis=1
    )  # (257, 64)
    return np.log(spectrum @ weights + 0.01)


def test_vggish_log_mel_matches_librosa():
    waveform = _noise_and_tone(1.0)
    ours = vggish_log_mel(waveform)
    expected = _librosa_vggish_log_mel(waveform)
    assert ours.shape == (98, 64) == expected.shape  # 1 + (16000 - 400) // 160 frames
    np.testing.assert_allclose(ours, expected, atol=2e-4)


def test_vggish_mel_matrix_bands_and_dc():
    weights = vggish_mel_matrix()
    assert weights.shape == (257, 64)
    assert (weights[0] == 0).all()  # the DC bin has no weight
    freqs = np.linspace(0, 8000, 257)
    covered = freqs[(weights > 0).any(axis=1)]
    assert covered.min() > 125 and covered.max() < 7500  # bands lie inside 125-7500 Hz
    assert weights.max() <= 1.0


def test_vggish_example_of_a_segment_is_the_log_mel_of_its_own_second():
    waveform = _noise_and_tone(3.0)
    examples = vggish_examples(waveform, 3)
    assert examples.shape == (3, 96, 64)
    for t in range(3):
        second = waveform[t * SR : (t + 1) * SR]
        np.testing.assert_allclose(examples[t], vggish_log_mel(second)[:96], atol=1e-5)


def test_vggish_examples_need_the_whole_segments():
    with pytest.raises(PipelineError, match="at least 2 s"):
        vggish_examples(np.zeros(SR + 10, dtype=np.float32), 2)


def test_seed003_log_mel_is_1000_by_80_for_ten_seconds_and_matches_librosa():
    waveform = _noise_and_tone(10.0, seed=1)
    ours = seed003_log_mel(waveform, 10)
    assert ours.shape == (1000, 80)
    mel = librosa.feature.melspectrogram(
        y=waveform,
        sr=SR,
        n_fft=512,
        hop_length=160,
        win_length=320,
        window="hann",
        center=True,
        pad_mode="reflect",
        power=2.0,
        n_mels=80,
        fmin=0.0,
        fmax=8000.0,
        htk=True,
        norm=None,
    )  # (80, 1001)
    assert mel.shape == (80, 1001)
    np.testing.assert_allclose(ours, np.log(mel.T[:1000] + 1e-6), atol=2e-3)


def test_onsets_are_found_at_clicks():
    waveform = np.zeros(4 * SR, dtype=np.float32)
    clicks = [0.5, 1.5, 2.5, 3.5]
    for second in clicks:
        start = int(second * SR)
        waveform[start : start + 160] = np.hanning(160)
    envelope, is_onset = onsets(seed003_mel_power(waveform, 4))
    assert envelope.shape == is_onset.shape == (400,)
    found = np.flatnonzero(is_onset)
    assert len(found) == len(clicks)
    np.testing.assert_allclose(found, [100 * s for s in clicks], atol=2)
