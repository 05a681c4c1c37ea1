"""robodetect: is the caller an AI/TTS robot or a human?

>>> import robodetect
>>> detector = robodetect.load()
>>> result = detector.score_file("call.wav")
>>> result.label, result.robot_probability
"""

__version__ = "0.1.0"

from .audio import SAMPLE_RATE, AudioError, load_audio
from .core import Result, WindowScore
from .engines import ENGINES, load


def __getattr__(name: str):
    if name == "Detector":  # imported on first use: it brings torch, which ``score`` may not need
        from .detector import Detector

        return Detector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "load",
    "ENGINES",
    "Detector",
    "Result",
    "WindowScore",
    "AudioError",
    "load_audio",
    "SAMPLE_RATE",
    "__version__",
]
