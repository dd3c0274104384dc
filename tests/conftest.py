# Import the package before any test module imports mlx.core, as a user's program would:
# on Linux it puts an optimized BLAS under MLX's CPU build (mlx_audio_lid/cpu_blas.py).
import mlx_audio_lid  # noqa: F401
