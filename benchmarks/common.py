"""What every benchmark prints beside its numbers: the machine and the library versions."""

import os
import platform
from importlib.metadata import PackageNotFoundError, version


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> str:
    import mlx.core as mx

    packages = []
    for name in ("mlx", "mlx-audio", "torch", "transformers", "speechbrain"):
        try:
            packages.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    blas = os.environ.get("LD_PRELOAD", "") or "MLX's bundled BLAS"
    return (
        f"{cpu_name()}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}; "
        f"MLX device {mx.default_device()}; BLAS: {blas}; " + ", ".join(packages)
    )


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
