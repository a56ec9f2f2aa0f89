"""Scaling estimate for data-parallel training over N machines, from measured figures.

Model: each machine computes its share of the global batch in t1 / N (t1: the measured step
time of one machine on the whole batch; optimistic, small shares run less efficiently), then
the ranks all-reduce the gradient (G bytes; a bandwidth-optimal all-reduce moves 2 (N-1)/N G
per rank) and gather the embeddings (E bytes of the global batch; (N-1)/N E per rank), plus a
latency per collective. Communication overtakes compute where t1 / N < t_comm(N).

    python3 bench/mpi_scaling.py NAME T1_SECONDS GRADIENT_BYTES EMBEDDING_BYTES COLLECTIVES
"""

import sys

name, t1, grad, emb, collectives = sys.argv[1], *map(float, sys.argv[2:6])
latency = 30e-6  # seconds per collective on a 10/100 Gbit/s Ethernet link
print(f"{name}: step {t1:.3f} s on one machine, gradient {grad / 1e6:.2f} MB, "
      f"embeddings {emb / 1e6:.2f} MB, {collectives:.0f} collectives per step")
print(f"{'N':>4} " + " ".join(f"{f'{g} Gbit/s step (speed-up)':>27}" for g in (10, 100)))
crossover = {}
for n in [1, 2, 4, 8, 16, 32, 64, 128, 256]:
    row = []
    for gbit in (10, 100):
        bw = gbit * 1e9 / 8
        comm = 0.0 if n == 1 else (2 * (n - 1) / n * grad + (n - 1) / n * emb) / bw + collectives * latency
        compute = t1 / n
        if comm > compute and gbit not in crossover:
            crossover[gbit] = n
        step = compute + comm
        row.append(f"{step * 1e3:>15.1f} ms ({t1 / step:5.1f}x)")
    print(f"{n:>4} " + " ".join(f"{r:>27}" for r in row))
for gbit in (10, 100):
    bw = gbit * 1e9 / 8
    limit = t1 / ((2 * grad + emb) / bw + collectives * latency)
    where = f"from N = {crossover[gbit]}" if gbit in crossover else "not up to N = 256"
    print(f"{gbit} Gbit/s: communication overtakes compute near N = {limit:.0f} ({where} in the table)")
