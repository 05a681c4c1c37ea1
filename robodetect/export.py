"""Portable exports of the detector: TorchScript and ONNX graphs over raw 8 kHz PCM windows.

The exported graph is :class:`WindowScorer`: it takes ``wav`` float32 (B, WINDOW_SAMPLES) -- raw
8 kHz speech windows in [-1, 1], exactly the windows :func:`robodetect.scoring.cut_windows` cuts --
and returns two (B,) float32 outputs:

- ``probability``: the calibrated robot probability of each window;
- ``logit``: the calibrated logit of each window (``calib_scale * raw_logit + calib_bias``).

A call's score is ``sigmoid(mean(logit))`` over its windows (:mod:`robodetect.scoring`: the window
plan, :func:`~robodetect.scoring.call_logit`, calibration, threshold and uncertain band);
averaging ``logit`` rather than ``probability`` is what makes it match. The whole feature
front end (STFT power, mel filterbank, prosody) is inside the graph, so a runtime needs no librosa.

The ONNX opset-17 exporter cannot export ``torch.stft`` (complex output), so the exported front end
computes the power spectrogram as a strided ``conv1d`` with a fixed Hann-windowed DFT basis
(:class:`DftFrontEnd`); everything after the power spectrum is :class:`FrontEnd`'s own code. The
same graph is used for TorchScript so both exports are one computation. See docs/streaming.md.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import scoring
from .audio import SAMPLE_RATE
from .config import find_model, source_digest
from .features import FINE_N_FFT, HOP_SAMPLES, N_FFT, PITCH_N_FFT, WINDOW_SAMPLES, FrontEndConfig
from .frontend import FrontEnd
from .model import RobotNet, resolve_model
from .onnxengine import ENGINE_DIGEST_KEY, ENGINE_OUTPUTS, engine_path
from .vad import VadConfig

FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 17
INPUT_NAME = "wav"
OUTPUT_NAMES = ("probability", "logit")
N_BINS = N_FFT // 2 + 1


def dft_basis(n_fft: int = N_FFT, win_length: int = N_FFT, ramp: bool = False) -> np.ndarray:
    """(2 * (n_fft // 2 + 1), 1, win_length) float32 conv1d kernels: Hann-windowed cosines then sines.

    Convolving a signal with row k (stride: the front end's hop_length) gives the real (k <= n_fft // 2) or minus the
    imaginary part of the ``n_fft``-point DFT of each Hann-windowed ``win_length``-sample frame (zero-padded
    when ``n_fft`` > ``win_length``): ``FrontEnd.power`` for N_FFT, ``FrontEnd.pitch_power`` for PITCH_N_FFT,
    ``FrontEnd.fine_power`` for FINE_N_FFT frames of FINE_N_FFT samples; ``ramp``: the window times
    time from the frame's centre in frames (``FrontEnd.ramp_window``, for the group delay).
    """
    n = np.arange(win_length)
    k = np.arange(n_fft // 2 + 1)[:, None]
    window = torch.hann_window(win_length, dtype=torch.float64).numpy()  # periodic, as FrontEnd's
    if ramp:
        window = window * (n - win_length / 2) / win_length
    angle = 2.0 * np.pi * ((k * n) % n_fft) / n_fft
    basis = np.concatenate([window * np.cos(angle), window * np.sin(angle)])
    return basis[:, None, :].astype(np.float32)


class DftFrontEnd(FrontEnd):
    """:class:`FrontEnd` with the STFT power computed as conv1d over a DFT basis (exportable)."""

    def __init__(self, filterbank: str = "mel", config: FrontEndConfig | None = None) -> None:
        super().__init__(filterbank, config)
        self.register_buffer("dft", torch.from_numpy(dft_basis()), persistent=False)
        self.register_buffer("pitch_dft", torch.from_numpy(dft_basis(PITCH_N_FFT)), persistent=False)
        if self.fine_bands:
            fine = dft_basis(FINE_N_FFT, FINE_N_FFT)
            self.register_buffer("fine_dft", torch.from_numpy(fine), persistent=False)
        if self.group_delay:
            self.register_buffer("ramp_dft", torch.from_numpy(dft_basis(ramp=True)), persistent=False)

    def _conv_dft(self, wav: torch.Tensor, basis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = F.conv1d(wav.float().unsqueeze(1), basis, stride=self.hop_length)
        half = basis.shape[0] // 2
        return y[:, :half], y[:, half:]

    def _conv_power(self, wav: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
        re, im = self._conv_dft(wav, basis)
        return re * re + im * im

    def cross_power(self, wav: torch.Tensor) -> torch.Tensor:
        """Equal to FrontEnd.cross_power within float32 rounding."""
        (re, im), (re_r, im_r) = self._conv_dft(wav, self.dft), self._conv_dft(wav, self.ramp_dft)
        return re_r * re + im_r * im

    def power(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, n) -> (B, N_BINS, frames), equal to FrontEnd.power within float32 rounding."""
        return self._conv_power(wav, self.dft)

    def pitch_power(self, wav: torch.Tensor) -> torch.Tensor:
        """Equal to FrontEnd.pitch_power within float32 rounding."""
        return self._conv_power(wav, self.pitch_dft)

    def fine_power(self, wav: torch.Tensor) -> torch.Tensor:
        """Equal to FrontEnd.fine_power within float32 rounding."""
        pad = (FINE_N_FFT - N_FFT) // 2
        return self._conv_power(F.pad(wav.float(), (pad, pad)), self.fine_dft)


class WindowScorer(nn.Module):
    """The exported graph: wav (B, WINDOW_SAMPLES) -> (probability (B,), calibrated logit (B,))."""

    def __init__(self, model: RobotNet) -> None:
        super().__init__()
        self.frontend = DftFrontEnd(model.config.filterbank, model.config.frontend)
        self.net = model.eval()
        self.calib_scale = float(model.config.calib_scale)
        self.calib_bias = float(model.config.calib_bias)

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logmel, prosody = self.frontend(wav)
        logit = scoring.calibrated_logit(self.net.head(logmel, prosody), scale=self.calib_scale, bias=self.calib_bias)
        return torch.sigmoid(logit), logit


def _resolve_model(model: RobotNet | str | os.PathLike | None) -> RobotNet:
    return model.cpu().eval() if isinstance(model, RobotNet) else resolve_model(model)


def export_model(
    out_path: str | os.PathLike,
    fmt: str = "onnx",
    model: RobotNet | str | os.PathLike | None = None,
) -> Path:
    """Write the detector as an ONNX or TorchScript graph over raw PCM windows; returns the path.

    out_path: file to write (``.onnx`` / ``.pt`` are conventional; parent folders are created).
    fmt: ``onnx`` or ``torchscript``.
    model: a :class:`RobotNet`, a shipped model name or a model stem (``<stem>.safetensors`` +
    ``<stem>.json``), or None for the default shipped model. Input ``wav`` (B, 8000 Hz * 2 s) float32; batch size is dynamic.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (use one of {FORMATS})")
    net = _resolve_model(model)
    scorer = WindowScorer(net).eval()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, WINDOW_SAMPLES)
    example[:, ::7] = 0.1  # any non-degenerate input; the graph has no data-dependent control flow
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer / exporter chatter
        if fmt == "torchscript":
            traced = torch.jit.trace(scorer, (example,), check_trace=False)
            traced = torch.jit.freeze(traced)
            torch.jit.save(
                traced, str(out), _extra_files={"robodetect.json": json.dumps(_metadata(net), allow_nan=False)}
            )
        else:
            _onnx_export(scorer, example, out, OUTPUT_NAMES, _metadata(net))
    return out


def _onnx_export(module: nn.Module, example: torch.Tensor, out: Path, outputs: tuple[str, ...], meta: dict) -> None:
    torch.onnx.export(
        module,
        (example,),
        str(out),
        dynamo=False,
        opset_version=ONNX_OPSET,
        input_names=[INPUT_NAME],
        output_names=list(outputs),
        dynamic_axes={INPUT_NAME: {0: "batch"}, **{name: {0: "batch"} for name in outputs}},
    )
    _add_onnx_metadata(out, meta)


class EngineGraph(nn.Module):
    """The graph of the ONNX scoring engine (:mod:`robodetect.onnxengine`): wav (B, WINDOW_SAMPLES)
    -> (uncalibrated logit (B,), prosody (B, 6)), i.e. ``Detector.window_logits`` in one graph."""

    def __init__(self, model: RobotNet) -> None:
        super().__init__()
        self.frontend = DftFrontEnd(model.config.filterbank, model.config.frontend)
        self.net = model.eval()

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logmel, prosody = self.frontend(wav)
        return self.net.head(logmel, prosody), prosody


def export_engine(name_or_stem: str | os.PathLike | None = None, out_path: str | os.PathLike | None = None) -> Path:
    """Write the ONNX scoring engine's graph of a model (default: beside its weights, as
    ``<stem>.scorer.onnx``, which is where :func:`robodetect.onnxengine.engine_path` looks); its
    metadata holds :func:`robodetect.config.source_digest` of the JSON and weights it was made
    from, so a graph left behind by retrained weights is never used. Returns the path."""
    config_file, weights_file, _ = find_model(name_or_stem)
    digest = source_digest(config_file.read_bytes(), weights_file.read_bytes())
    net = resolve_model(name_or_stem)
    out = Path(out_path) if out_path is not None else engine_path(config_file)
    example = torch.zeros(2, WINDOW_SAMPLES)
    example[:, ::7] = 0.1
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _onnx_export(EngineGraph(net).eval(), example, out, ENGINE_OUTPUTS, {ENGINE_DIGEST_KEY: digest})
    return out


def _metadata(net: RobotNet) -> dict[str, str]:
    decision = net.config.decision()
    return {
        "robodetect_version": net.config.version,
        "threshold": repr(float(decision.threshold)),
        "uncertain_low": repr(float(decision.uncertain_low)),
        "uncertain_high": repr(float(decision.uncertain_high)),
        "sample_rate": str(SAMPLE_RATE),
        "window_samples": str(WINDOW_SAMPLES),
        # the plan's hop: windows start every hop_samples of speech (robodetect.scoring.window_spans)
        "hop_samples": str(net.config.frontend.hop_samples),
        "call_score": "sigmoid(mean(logit)) over the call's speech windows",
        # the VAD the windows must be cut with (docs/streaming.md, "From windows to a call score")
        "vad": json.dumps(asdict(net.config.vad), sort_keys=True),
    }


def _add_onnx_metadata(path: Path, meta: dict) -> None:
    """Record ``meta`` (model version, threshold, input contract) in the ONNX file's metadata."""
    import onnx

    proto = onnx.load(str(path))
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(proto, str(path))


class ExportedWindowLogits:
    """Callable scorer over an exported model, for :class:`robodetect.stream.StreamingDetector`
    (``window_logits=``) and benchmarks: windows (n, WINDOW_SAMPLES) float32 -> calibrated logits (n,).

    ``.onnx`` files run on onnxruntime (CPU); anything else is loaded as TorchScript. ``threshold``
    and ``version`` come from the export's metadata. ``threads`` limits the runtime's intra-op threads (process-wide for TorchScript).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        self.path = Path(path)
        if self.path.suffix == ".onnx":
            import onnxruntime as ort

            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            meta = self.session.get_modelmeta().custom_metadata_map
            self.runtime = "onnxruntime"
        else:
            extra = {"robodetect.json": ""}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still works
                self.module = torch.jit.load(str(self.path), map_location="cpu", _extra_files=extra)
            meta = json.loads(extra["robodetect.json"] or "{}")
            self.runtime = "torchscript"
            if threads:
                torch.set_num_threads(threads)
        self.threshold = float(meta.get("threshold", 0.5))
        band = (float(meta["uncertain_low"]), float(meta["uncertain_high"])) if "uncertain_low" in meta else None
        #: threshold + uncertain band of the exported model (older exports: the default band)
        self.decision = scoring.Decision.make(self.threshold, band)
        self.version = meta.get("robodetect_version", "unknown")
        #: how the export's model cuts windows (a stream over it must use them): its VAD (an export
        #: without the key: the VAD of the models of its time) and its window hop
        self.vad_config = VadConfig.legacy(**json.loads(meta.get("vad", "{}")))
        self.hop_samples = scoring.check_hop(int(meta.get("hop_samples", HOP_SAMPLES)))

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        windows = np.ascontiguousarray(windows, dtype=np.float32)
        if self.runtime == "onnxruntime":
            return self.session.run([OUTPUT_NAMES[1]], {INPUT_NAME: windows})[0].astype(np.float64)
        with torch.inference_mode():
            return self.module(torch.from_numpy(windows))[1].numpy().astype(np.float64)


def load_exported(path: str | os.PathLike, threads: int | None = None) -> ExportedWindowLogits:
    """Load an ONNX / TorchScript export as a window scorer (see :class:`ExportedWindowLogits`)."""
    return ExportedWindowLogits(path, threads)


__all__ = [
    "export_model",
    "load_exported",
    "ExportedWindowLogits",
    "WindowScorer",
    "DftFrontEnd",
    "dft_basis",
    "FORMATS",
    "OUTPUT_NAMES",
]
