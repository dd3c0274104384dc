"""Hub ids resolved by huggingface_hub's own code from a prepared offline cache, in processes where torch cannot be imported.

The cache is laid out as `hf_hub_download` leaves it: models--org--name/blobs/<hash>,
snapshots/<commit>/<file> -> relative symlinks made by huggingface_hub's `_create_symlink`, and
refs/main written by `_cache_commit_hash_for_specific_revision`; `scan_cache_dir` must see both repos.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
ECAPA_FIXTURE = ROOT / "tests" / "fixtures" / "ecapa" / "voxlingua107_tiny"
ECAPA_ID = "speechbrain/lang-id-voxlingua107-ecapa"
MMS_ID = "facebook/mms-lid-126"
NO_TORCH = """import importlib.machinery, sys


class PathFinderWithoutTorch(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            return None
        return super().find_spec(name, path, target)


sys.meta_path = [PathFinderWithoutTorch if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
"""
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def add_repo(cache: Path, repo_id: str, source: Path) -> None:
    """Copy `source`'s files into the cache as blobs plus snapshot links, with huggingface_hub's helpers."""
    from huggingface_hub.file_download import (
        _cache_commit_hash_for_specific_revision, _create_symlink, _get_pointer_path, repo_folder_name)

    storage = cache / repo_folder_name(repo_id=repo_id, repo_type="model")
    for file in sorted(p for p in source.iterdir() if p.is_file()):
        data = file.read_bytes()
        # The Hub names LFS blobs by sha256 and plain git files by their git blob sha1.
        if file.suffix in (".ckpt", ".safetensors", ".bin"):
            etag = hashlib.sha256(data).hexdigest()
        else:
            etag = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        blob = storage / "blobs" / etag
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        pointer = Path(_get_pointer_path(str(storage), COMMIT, file.name))
        pointer.parent.mkdir(parents=True, exist_ok=True)
        _create_symlink(str(blob), str(pointer), new_blob=True)
    _cache_commit_hash_for_specific_revision(str(storage), "main", COMMIT)


@pytest.fixture(scope="module")
def hub_env(tmp_path_factory):
    pytest.importorskip("huggingface_hub")
    transformers = pytest.importorskip("transformers")
    from references import mms

    work = tmp_path_factory.mktemp("hub")
    mms_folder = mms.save_published_layout(mms.build(mms.tiny_config(num_labels=126)), work / "mms_src")
    cache = work / "home" / "hub"
    add_repo(cache, ECAPA_ID, ECAPA_FIXTURE)
    add_repo(cache, MMS_ID, mms_folder)

    from huggingface_hub import scan_cache_dir
    repos = {(r.repo_id, r.repo_type): r for r in scan_cache_dir(cache).repos}
    assert set(repos) == {(ECAPA_ID, "model"), (MMS_ID, "model")}
    assert {f.file_name for r in repos[(ECAPA_ID, "model")].revisions for f in r.files} == {
        p.name for p in ECAPA_FIXTURE.iterdir()}

    # torch as if not installed: a sitecustomize swaps Python's PathFinder for one that does not see
    # torch, so `import torch` raises ModuleNotFoundError and find_spec('torch') (what transformers
    # and scipy check) returns None.
    blocker = work / "no_torch"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(NO_TORCH)
    env = dict(os.environ, HF_HOME=str(work / "home"), HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(blocker), str(ROOT)]))
    env.pop("HF_HUB_CACHE", None)
    env.pop("HUGGINGFACE_HUB_CACHE", None)

    import soundfile
    clip = work / "clip.wav"
    soundfile.write(clip, np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1, 16000)
    return {"env": env, "clip": clip, "mms_labels": mms.tiny_config(num_labels=126).id2label}


def run(env, *args):
    result = subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_torch_is_blocked(hub_env):
    result = subprocess.run([sys.executable, "-c", "import torch"], env=hub_env["env"], capture_output=True, text=True)
    assert result.returncode != 0 and "No module named 'torch'" in result.stderr


def test_load_both_ids_from_the_cache(hub_env):
    script = (
        "import sys, mlx_audio_lid\n"
        f"ecapa = mlx_audio_lid.load({ECAPA_ID!r})\n"
        f"mms = mlx_audio_lid.load({MMS_ID!r})\n"
        "print(len(ecapa.labels), len(mms.labels))\n"
        "print('\\n'.join(mms.labels))\n"
        "print(sys.modules.get('torch') is not None)\n"
    )
    lines = run(hub_env["env"], "-c", script).splitlines()
    n_ecapa, n_mms = map(int, lines[0].split())
    assert n_ecapa == 107  # VoxLingua107's label_encoder.txt
    assert n_mms == 126
    assert lines[1:127] == [hub_env["mms_labels"][i] for i in range(126)]
    assert lines[-1] == "False"


def test_cli_identifies_with_the_default_model_from_the_cache(hub_env):
    out = run(hub_env["env"], "-m", "mlx_audio_lid", "identify", str(hub_env["clip"]),
              "--format", "json")  # no --model: the CLI's default, from the cache
    records = json.loads(out)
    assert len(records) == 1
    assert records[0]["path"] == str(hub_env["clip"])
    assert 0.0 <= records[0]["probability"] <= 1.0 and records[0]["duration"] == 2.0

def test_unknown_id_offline_is_a_clear_error(hub_env):
    result = subprocess.run([sys.executable, "-m", "mlx_audio_lid", "identify", str(hub_env["clip"]),
                             "--model", "speechbrain/no-such-repo"], env=hub_env["env"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "speechbrain/no-such-repo" in result.stderr and "Traceback" not in result.stderr
