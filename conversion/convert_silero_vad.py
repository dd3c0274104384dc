"""Convert Silero VAD's ONNX file into mlx-audio's Silero VAD model (mlx_audio_lid/vad/silero_weights/).

The source is `silero_vad.onnx` from the `silero-vad` PyPI wheel (MIT, Silero Team), read with
the `onnx` package alone (no torch). The output folder is in mlx-audio's own layout
(`config.json` with model_type "silero_vad" + `model.safetensors`), so
`mlx_audio.vad.load(folder, strict=True)` loads it as `mlx_audio.vad.models.silero_vad.Model`.

    pip download --no-deps silero-vad==6.2.3 -d /tmp/silero
    python conversion/convert_silero_vad.py --source /tmp/silero/silero_vad-6.2.3-py3-none-any.whl

(`--source` also takes the .onnx file itself; without it, the installed silero-vad package's.)

The graph (v6.2.3, opset 16): `If(sr == 16000)`, the then-branch for 16 kHz and the else-branch
for 8 kHz, each with its weights as Constant nodes named after the PyTorch modules. Node by
node, the 16 kHz branch (8 kHz: halve every length) is exactly mlx-audio's SileroVADBranch:

    Pad(reflect, 0 left / 64 right)                         _reflect_pad_right(x, 64)
    Conv(stft.forward_basis_buffer, k 256, stride 128)      stft_conv
    Slice [0:129] / [129:], Pow 2, Add, Sqrt                 magnitude of real/imag halves
    Conv(encoder.{0..3}.reparam_conv, k 3, pad 1,
         strides 1, 2, 2, 1) + Relu each                    conv1 .. conv4 + relu
    LSTM(decoder.rnn.*, hidden 128)                          lstm (nn.LSTM)
    Relu, Conv(decoder.decoder.2, k 1), Sigmoid, ReduceMean  relu, final_conv, sigmoid, mean

The stored LSTM weights are PyTorch's LSTMCell (gate rows i, f, g, o); the graph's Slice/Concat
nodes reorder them to ONNX's i, o, f, c at run time. MLX's nn.LSTM uses PyTorch's order, so the
rows go in unchanged, and its single bias is bias_ih + bias_hh. Conv weights go from ONNX's
(out, in, kernel) to MLX's (out, kernel, in).
"""

import argparse
import hashlib
import io
import json
import zipfile
from importlib.util import find_spec
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

SILERO_VERSION = "6.2.3"  # the wheel these weights come from (pyproject's [test] pins the same)
ONNX_MEMBER = "silero_vad/data/silero_vad.onnx"
LICENSE_MEMBER = f"silero_vad-{SILERO_VERSION}.dist-info/licenses/LICENSE"
OUTPUT = Path(__file__).resolve().parents[1] / "mlx_audio_lid" / "vad" / "silero_weights"
BRANCHES = {"then_branch": "vad_16k", "else_branch": "vad_8k"}  # If(sr == 16000)

# ONNX constant (PyTorch module name) -> mlx-audio SileroVADBranch parameter.
CONVS = {
    "stft.forward_basis_buffer": "stft_conv.weight",
    "encoder.0.reparam_conv": "conv1",
    "encoder.1.reparam_conv": "conv2",
    "encoder.2.reparam_conv": "conv3",
    "encoder.3.reparam_conv": "conv4",
    "decoder.decoder.2": "final_conv",
}


def installed_silero() -> Path:
    """The installed silero-vad package's folder, found without importing it (it imports torch)."""
    spec = find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"silero-vad is not installed: pass --source (pip download --no-deps silero-vad=={SILERO_VERSION})"
        )
    return Path(list(spec.submodule_search_locations)[0])


def read_source(source: Path) -> Tuple[bytes, bytes]:
    """(ONNX file bytes, licence text bytes) from a silero-vad wheel, an .onnx file or the installed package."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            return wheel.read(ONNX_MEMBER), wheel.read(LICENSE_MEMBER)
    licence = [p for p in source.parents[2].glob("silero_vad-*.dist-info/licenses/LICENSE")]
    if not licence:
        raise FileNotFoundError(f"no silero-vad LICENSE found beside {source}; pass the wheel instead")
    return source.read_bytes(), licence[0].read_bytes()


def onnx_constants(onnx_bytes: bytes) -> Dict[str, Dict[str, np.ndarray]]:
    """{branch name: {PyTorch module name: array}} from the If node's two branches."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(io.BytesIO(onnx_bytes))
    switch = [node for node in model.graph.node if node.op_type == "If"]
    if len(switch) != 1:
        raise ValueError(f"expected one If(sr == 16000) node, found {len(switch)}: not the Silero v5/v6 graph")
    branches = {}
    for attribute in switch[0].attribute:
        found = {}
        for node in attribute.g.node:
            name = node.output[0].split("Inline_0__")[-1]
            if node.op_type == "Constant" and "." in name and not name.startswith("self."):
                found[name] = numpy_helper.to_array(node.attribute[0].t)
        branches[attribute.name] = found
    return branches


def mlx_audio_weights(branches: Dict[str, Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    """ONNX constants -> mlx-audio Silero VAD parameter names and layouts."""
    weights = {}
    for branch, prefix in BRANCHES.items():
        onnx_weights = dict(branches[branch])
        for source, target in CONVS.items():
            if target.endswith(".weight"):  # the STFT basis: a bias-free conv
                weights[f"{prefix}.{target}"] = onnx_weights.pop(source).transpose(0, 2, 1)
                continue
            weights[f"{prefix}.{target}.weight"] = onnx_weights.pop(f"{source}.weight").transpose(0, 2, 1)
            weights[f"{prefix}.{target}.bias"] = onnx_weights.pop(f"{source}.bias")
        weights[f"{prefix}.lstm.Wx"] = onnx_weights.pop("decoder.rnn.weight_ih")
        weights[f"{prefix}.lstm.Wh"] = onnx_weights.pop("decoder.rnn.weight_hh")
        weights[f"{prefix}.lstm.bias"] = onnx_weights.pop("decoder.rnn.bias_ih") + onnx_weights.pop("decoder.rnn.bias_hh")
        if onnx_weights:
            raise ValueError(f"{branch}: constants with no place in mlx-audio's model: {sorted(onnx_weights)}")
    return {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in weights.items()}


def config(onnx_bytes: bytes) -> dict:
    """mlx-audio's ModelConfig (its defaults) plus where the weights came from (unknown keys are ignored)."""
    return {
        "model_type": "silero_vad",
        "architecture": "silero_vad",
        "dtype": "float32",
        "source": {
            "package": "silero-vad",
            "version": SILERO_VERSION,
            "file": ONNX_MEMBER,
            "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
            "license": "MIT",
            "converted_by": "conversion/convert_silero_vad.py",
        },
    }


def convert(source: Path, output: Path = OUTPUT) -> Path:
    from safetensors.numpy import save_file

    onnx_bytes, licence = read_source(source)
    weights = mlx_audio_weights(onnx_constants(onnx_bytes))
    output.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(output / "model.safetensors"), metadata={"format": "mlx"})
    (output / "config.json").write_text(json.dumps(config(onnx_bytes), indent=2) + "\n", encoding="utf-8")
    (output / "LICENSE").write_bytes(licence)  # MIT: the notice travels with the weights
    return output


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="silero-vad wheel or silero_vad.onnx (default: the installed package's)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"folder to write (default {OUTPUT})")
    args = parser.parse_args(argv)
    source = args.source or installed_silero() / "data" / "silero_vad.onnx"
    if not source.exists():
        raise SystemExit(f"{source} does not exist")
    print(convert(source, args.output))


if __name__ == "__main__":
    main()
