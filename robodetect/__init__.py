"""robodetect: is the caller an AI/TTS robot or a human?

>>> import robodetect
>>> detector = robodetect.load()
>>> result = detector.score_file("call.wav")
>>> result.label, result.robot_probability
"""

__version__ = "0.1.0"

from .audio import SAMPLE_RATE, AudioError, load_audio
from .detector import Detector, Result, WindowScore, load

__all__ = ["load", "Detector", "Result", "WindowScore", "AudioError", "load_audio", "SAMPLE_RATE", "__version__"]
