"""Clean and patched copies of mlx-audio 0.6.2, made from the sdist on the package index.

`upstream/check` and `upstream/measure.py` build on these. The sdist is downloaded once with
pip into a cache (`$MLX_AUDIO_UPSTREAM_CACHE`, default `<tmp>/mlx-audio-upstream-cache`) and
checked against the sha256 that PyPI publishes; each copy is a fresh extraction, so nothing
installed in the running environment is touched. A copy is used by putting it first on
PYTHONPATH:

    python upstream/copies.py stock /tmp/mlx-audio-stock      # or: patched DIR
    PYTHONPATH=/tmp/mlx-audio-stock python repro.py
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "0.6.2"
SDIST = f"mlx_audio-{VERSION}.tar.gz"
SDIST_SHA256 = "ac43270632ce86370d17c54236e906e50ba19f0e6412b1f5e43646f3680ae8a5"  # as on PyPI

HERE = Path(__file__).resolve().parent
PATCHES = sorted((HERE / "patches").glob("*.patch"))
FIXTURE = HERE / "fixtures" / "speechbrain_ecapa_tiny.npz"
FIXTURE_IN_COPY = Path("mlx_audio/lid/tests/fixtures") / FIXTURE.name


def cache_dir() -> Path:
    default = Path(tempfile.gettempdir()) / "mlx-audio-upstream-cache"
    return Path(os.environ.get("MLX_AUDIO_UPSTREAM_CACHE") or default)


def sdist() -> Path:
    """The mlx-audio sdist, downloaded into the cache unless it is there already."""
    path = cache_dir() / SDIST
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", f"mlx-audio=={VERSION}", "--dest", str(path.parent)],
            check=True,
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise SystemExit(f"{path}: sha256 {digest}, expected {SDIST_SHA256}; delete it and retry")
    return path


def stock_copy(dest: Path) -> Path:
    """Extract the sdist into `dest` (which must not exist): mlx-audio 0.6.2 as published."""
    dest.mkdir(parents=True)
    with tarfile.open(sdist()) as archive:
        top = f"mlx_audio-{VERSION}"
        members = [m for m in archive.getmembers() if m.name != top]
        for member in members:
            if not member.name.startswith(top + "/"):
                raise SystemExit(f"unexpected path in {SDIST}: {member.name}")
            member.name = member.name[len(top) + 1 :]
        if hasattr(tarfile, "data_filter"):  # refuses links and paths out of dest
            archive.extractall(dest, members=members, filter="data")
        else:
            archive.extractall(dest, members=members)
    return dest


def patched_copy(dest: Path) -> Path:
    """A stock copy with the patch series applied in order, and the test fixture in place.

    The copy becomes a git repository of its own first, so that `git apply` resolves paths
    against it even when it lies inside another repository.
    """
    stock_copy(dest)
    subprocess.run(["git", "init", "--quiet", str(dest)], check=True)
    for patch in PATCHES:
        print(f"applying {patch.name}", flush=True)
        subprocess.run(["git", "apply", "--whitespace=error-all", str(patch)], cwd=dest, check=True)
    (dest / FIXTURE_IN_COPY).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURE, dest / FIXTURE_IN_COPY)
    return dest


def environment(copy: Path) -> dict:
    """os.environ with `copy` first on PYTHONPATH, so `import mlx_audio` finds it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def check_imports_from(copy: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import mlx_audio; print(mlx_audio.__file__)"],
        env=environment(copy), check=True, capture_output=True, text=True,
    ).stdout.strip()
    if not Path(out).resolve().is_relative_to(copy.resolve()):
        raise SystemExit(f"import mlx_audio found {out}, not the copy in {copy}")


if __name__ == "__main__":
    kinds = {"stock": stock_copy, "patched": patched_copy}
    if len(sys.argv) != 3 or sys.argv[1] not in kinds:
        raise SystemExit("usage: python upstream/copies.py stock|patched DIR")
    print(kinds[sys.argv[1]](Path(sys.argv[2])))
