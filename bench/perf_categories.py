"""Where contra's training step spends its time, from `perf script` output (call graphs
recorded with --call-graph dwarf): each sample goes to the first row whose pattern matches a
frame, from the sampled function outwards, so a memset inside a convolution counts as
allocation, and a GEMM as the operation that called it. Rows match bench/pytorch_bench.py's
`--profile`. Prints JSON: the share of samples per row and, given the step time in ms, ms per
step (samples are CPU time over all threads; their shares are applied to the wall time).

    perf script -F tid,ip,sym | python3 bench/perf_categories.py MODEL STEP_MS
"""
import collections
import json
import re
import sys

ROWS = [
    ("allocation and zeroing", r"memset|__libc_malloc|_int_malloc|_int_free|cfree|clear_page|do_anonymous_page|handle_mm_fault|exc_page_fault"),
    ("convolution weight gradient", r"burn_flex::ops::conv2d_(chunked|winograd)::weight_grad"),
    ("convolution input gradient", r"burn_flex::ops::conv_transpose|burn_flex::ops::conv2d_(chunked|winograd)::input_grad"),
    ("convolution forward", r"burn_flex::ops::conv::|burn_flex::ops::conv_common|burn_flex::ops::conv2d_(chunked|winograd)::forward"),
    # A Winograd transform on a worker thread: the phase (forward or a gradient) is further out.
    ("Winograd transform, phase not captured", r"burn_flex::ops::conv2d_winograd::"),
    ("batch norm", r"batch_norm"),
    ("pooling", r"burn_flex::ops::pool"),
    ("optimizer", r"contra::optim|burn_optim"),
    ("loss", r"contra::losses"),
    ("matrix products (head)", r"burn_flex::ops::matmul"),
    ("copies and concatenation", r"copy_2d_tiled|copy_contiguous|into_contiguous|burn_flex::ops::cat|burn_flex::ops::slice|memmove|memcpy"),
    ("element-wise (activations, gradient sums)", r"burn_flex::ops::(binary|unary|activation|comparison|mask|reduce|expand)|burn_flex::zip|burn_flex::simd|macerator"),
    ("threads waiting", r"rayon_core::sleep|rayon_core::registry::WorkerThread::wait|futex|schedule|finish_task_switch|_raw_spin_unlock"),
    ("autodiff bookkeeping", r"burn_autodiff"),
    # A GEMM kernel on a worker thread whose stack was cut before the operation that called it.
    ("GEMM, caller not captured", r"gemm"),
]
CONVOLVE = re.compile(r"burn_flex::ops::conv2d_winograd::convolve")
COMPILED = [(name, re.compile(p)) for name, p in ROWS]
# Rows whose samples belong to an operation named further out on the stack; where the stack
# was cut (a worker thread's), they are shared out like the samples whose operation was seen.
DEFERRED = ("GEMM, caller not captured", "Winograd transform, phase not captured")
# What a deferred sample can belong to (not rayon's wait loop that runs a worker's task).
OPERATIONS = ("convolution weight gradient", "convolution input gradient", "convolution forward",
              "batch norm", "pooling", "optimizer", "loss", "matrix products (head)")


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else "?"
    step_ms = float(sys.argv[2]) if len(sys.argv) > 2 else None
    counts = collections.Counter()
    callers = {row: collections.Counter() for row in DEFERRED}
    total = 0
    for sample in sys.stdin.read().split("\n\n"):
        frames = [line.strip() for line in sample.strip().split("\n")[1:] if line.strip()]
        if not frames:
            continue
        total += 1
        row = "other"
        for frame in frames:
            hit = next((name for name, pat in COMPILED if pat.search(frame)), None)
            if hit:
                row = hit
                break
        if row in DEFERRED:
            # The calling thread's samples name their operation further out.
            caller = next((name for frame in frames for name, pat in COMPILED
                           if name in OPERATIONS and pat.search(frame)), None)
            if caller:
                callers[row][caller] += 1
                row = caller
            elif any(CONVOLVE.search(f) for f in frames):
                # Winograd's forward and input gradient share `convolve` (on a worker, the
                # caller is not on the stack); for C -> C convolutions they do the same work.
                counts["convolution forward"] += 0.5
                counts["convolution input gradient"] += 0.5
                continue
        counts[row] += 1
    for row, seen_callers in callers.items():
        seen = sum(seen_callers.values())
        if seen and counts[row]:
            lost = counts.pop(row)
            for name, n in seen_callers.items():
                counts[name] += lost * n / seen
    share = {name: counts[name] / total for name, _ in ROWS + [("other", "")]}
    out = {"bench": "profile", "impl": "contra-flex", "model": model, "samples": total,
           "share": {k: round(v, 4) for k, v in share.items()}}
    if step_ms:
        out["step_ms"] = step_ms
        out["ms_per_step"] = {k: round(v * step_ms, 2) for k, v in share.items()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
