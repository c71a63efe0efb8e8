"""The storyboard: its schema (`schema`), the checks of its meaning (`checks`), and loading it (`load`)."""

from longvid.storyboard.checks import check_semantics
from longvid.storyboard.load import json_schema, load_storyboard, validate_data
from longvid.storyboard.schema import (
    CHARACTER_REF,
    AudioModelSpec,
    AudioSpec,
    ContinuitySpec,
    InterpolationSpec,
    KeyframeModelSpec,
    KeyframeSpec,
    LoraSpec,
    ModelsSpec,
    MusicSpec,
    PipelineOptions,
    SchedulerSpec,
    ShotSpec,
    SoundSpec,
    StoryboardSpec,
    TransitionSpec,
    VideoModelSpec,
    VoiceSpec,
)

__all__ = [
    "CHARACTER_REF",
    "AudioModelSpec",
    "AudioSpec",
    "ContinuitySpec",
    "InterpolationSpec",
    "KeyframeModelSpec",
    "KeyframeSpec",
    "LoraSpec",
    "ModelsSpec",
    "MusicSpec",
    "PipelineOptions",
    "SchedulerSpec",
    "ShotSpec",
    "SoundSpec",
    "StoryboardSpec",
    "TransitionSpec",
    "VideoModelSpec",
    "VoiceSpec",
    "check_semantics",
    "json_schema",
    "load_storyboard",
    "validate_data",
]
