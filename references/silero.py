"""The Silero VAD reference: silero-vad's own code running its ONNX file on onnxruntime.

silero-vad (pinned in the [test] extra to the version the packaged weights were converted from)
is used without importing its package, whose __init__ sets torch's thread count for the whole
process: its `utils_vad.py` is loaded from the file, and its ONNX file is read from the folder.
`utils_vad` imports torch (a test dependency already); the ONNX path and the segment rules
(`get_speech_timestamps_from_probs`) need nothing of torch.
"""

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"  # ../shared beside the checkout


def shared_folder() -> Optional[Path]:
    """`../shared` (or $MLX_AUDIO_LID_SHARED), where the real recordings live; None if absent."""
    import os

    folder = Path(os.environ.get("MLX_AUDIO_LID_SHARED", SHARED))
    return folder if folder.is_dir() else None


def real_speech() -> List[Path]:
    folder = shared_folder()
    return sorted((folder / "real" / "speech").glob("*.wav")) if folder else []


def package_folder() -> Optional[Path]:
    spec = importlib.util.find_spec("silero_vad")
    return Path(list(spec.submodule_search_locations)[0]) if spec and spec.submodule_search_locations else None


def onnx_file() -> Path:
    folder = package_folder()
    if folder is None:
        raise FileNotFoundError("silero-vad is not installed (pip install -e '.[test]')")
    return folder / "data" / "silero_vad.onnx"


@lru_cache(maxsize=None)
def utils_vad():
    """silero_vad/utils_vad.py, loaded from its file."""
    spec = importlib.util.spec_from_file_location("silero_vad_utils_vad", onnx_file().parents[1] / "utils_vad.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def onnx_model():
    """Silero's own OnnxWrapper (onnxruntime, CPU, one thread) around the ONNX file."""
    return utils_vad().OnnxWrapper(str(onnx_file()), force_onnx_cpu=True)


def onnx_probabilities(samples: np.ndarray) -> np.ndarray:
    """Speech probability per 512-sample frame, as Silero computes it (last frame zero-padded)."""
    import torch

    return onnx_model().audio_forward(torch.from_numpy(np.asarray(samples, np.float32)), 16000)[0].numpy()


def onnx_segments(samples: np.ndarray, **rules) -> List[Tuple[int, int]]:
    """Silero's get_speech_timestamps on onnxruntime: (start, end) samples."""
    import torch

    found = utils_vad().get_speech_timestamps(torch.from_numpy(np.asarray(samples, np.float32)), onnx_model(), **rules)
    return [(s["start"], s["end"]) for s in found]


def segments_from_probabilities(probabilities: np.ndarray, length: int, **rules) -> List[Tuple[int, int]]:
    """Silero's get_speech_timestamps_from_probs: (start, end) samples."""
    found = utils_vad().get_speech_timestamps_from_probs(
        [float(p) for p in probabilities], audio_length_samples=length, **rules
    )
    return [(s["start"], s["end"]) for s in found]


def frame_flags(segments: List[Tuple[int, int]], frames: int, frame: int = 512) -> np.ndarray:
    """Speech per frame from sample segments: the frame's centre lies inside a segment."""
    centres = np.arange(frames) * frame + frame // 2
    flags = np.zeros(frames, bool)
    for start, end in segments:
        flags |= (centres >= start) & (centres < end)
    return flags
