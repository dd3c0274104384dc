"""Where a long recording's `identify(segments=True)` spends its time: the network or the rest.

README "Speed" found ECAPA's network 2-3x faster than SpeechBrain's on the H200 while a
10-minute `identify` was not; this splits that call. It times `identify` on a random
recording (random weights at the published size, the energy VAD: synthetic sound), then the
same call under cProfile, and prints the time inside the model's forward (synchronised with
`mx.eval`, so the network's own time) beside everything else, and the top functions by their
own time.

    python -m benchmarks.profile_identify --model ecapa --minutes 10 --dtype float16
"""

import argparse
import cProfile
import pstats
import sys
import time

import mlx_audio_lid as lid  # first: before anything imports mlx.core (cpu_blas.py)

import mlx.core as mx  # noqa: E402
import numpy as np  # noqa: E402

from references import sizes  # noqa: E402

from .common import machine_description, random_model

CONFIGS = {"ecapa": sizes.voxlingua107_ecapa, "mms": sizes.mms_lid}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(CONFIGS), default="ecapa")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    model = random_model(CONFIGS[args.model](), args.dtype)
    recording = np.random.default_rng(0).normal(0, 0.1, int(args.minutes * 60 * 16000)).astype(np.float32)

    counter = {"seconds": 0.0, "calls": 0}
    forward = model.forward

    def timed_forward(*a, **k):  # the network, synchronised: its own time, not the host's queueing
        start = time.perf_counter()
        out = forward(*a, **k)
        mx.eval(out)
        counter["seconds"] += time.perf_counter() - start
        counter["calls"] += 1
        return out

    def run():
        return lid.identify(model, recording, segments=True, batch_size=args.batch, vad="energy")

    run()  # warm: kernels, the VAD
    plain = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        run()
        plain.append(time.perf_counter() - start)
    object.__setattr__(model, "forward", timed_forward)
    start = time.perf_counter()
    run()
    instrumented = time.perf_counter() - start
    network = dict(counter)  # this run's; the profiled run below adds to the counter
    profile = cProfile.Profile()
    profile.enable()
    run()
    profile.disable()

    print(f"# identify(segments=True) of {args.minutes:g} min, {args.model} {args.dtype}, batch {args.batch}\n")
    print(machine_description(), "\n")
    print("| part | ms | share |\n|---|---|---|")
    print(f"| identify, median of {args.repeats} | {np.median(plain) * 1e3:.0f} | |")
    print(f"| identify, network synchronised per batch | {instrumented * 1e3:.0f} | 100 % |")
    print(f"| network ({network['calls']} forward calls) | {network['seconds'] * 1e3:.0f} | "
          f"{100 * network['seconds'] / instrumented:.0f} % |")
    rest = instrumented - network["seconds"]
    print(f"| everything else (decode, VAD, windows, batching, answers) | {rest * 1e3:.0f} | {100 * rest / instrumented:.0f} % |")
    print(f"\nTop {args.top} functions by own time (one identify under cProfile; the network's kernels run inside mx.eval):\n")
    print("```")
    pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(args.top)
    print("```")


if __name__ == "__main__":
    main()
