"""What the LTX-2 adapter (issue 12, not built yet) will rely on, checked on the tiny LTX-2 of `tests/tiny_ltx2.py`
loaded with `from_pretrained`: video and stereo audio come from one call, the audio at the vocoder's rate and a
little shorter than the video (which the mixer must pad)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("diffusers.pipelines.ltx2", reason="needs the [diffusers] extra with LTX-2")

import torch  # noqa: E402

from tests.tiny_ltx2 import FAST, build_ltx2  # noqa: E402


def test_one_call_gives_frames_and_stereo_audio_at_the_vocoders_rate(tmp_path):
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(build_ltx2("ltx2", tmp_path))
    out = pipe(prompt="a fox", height=64, width=64, num_frames=17, frame_rate=24.0, num_inference_steps=2,
               max_sequence_length=16, generator=torch.Generator().manual_seed(0), output_type="np", **FAST)
    frames, audio = np.asarray(out.frames), out.audio
    assert frames.shape == (1, 17, 64, 64, 3) and frames.min() >= 0 and frames.max() <= 1
    rate = pipe.vocoder.config.output_sampling_rate
    assert rate == 24000 and pipe.audio_sampling_rate == 16000  # the mel rate is not the waveform's
    assert isinstance(audio, torch.Tensor) and audio.shape[:2] == (1, 2)
    # round(17 / 24 * 25) = 18 audio latents -> 18 * 4 - 3 mel frames of 240 samples: a little short of the video
    assert audio.shape[2] == (round(17 / 24 * 25) * 4 - 3) * 240
    assert 17 / 24 - 0.1 < audio.shape[2] / rate <= 17 / 24
