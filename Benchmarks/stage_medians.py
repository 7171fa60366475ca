"""Median T and S block time per stage over alternating runs of two generated programs.

The host is shared and its 2-thread speed drifts from run to run, so a single profile per model can put the T and
S blocks in different conditions. Run the two programs alternately and let this script take medians:

    hybridc compile Graphs/models/restormer.yml --random-weights 0 -o rest
    hybridc compile Graphs/models/mambairunet.yml --random-weights 0 -o mamba
    mkdir -p st
    for r in 1 2 3 4 5; do for m in rest mamba; do
        ./$m Graphs/images/rainy-256.png o.png --threads 2 --json st/$m-2-$r.json; done; done
    (the same with --threads 1 and st/$m-1-$r.json)
    python3 Benchmarks/stage_medians.py st

For each thread count it prints the runs' wall medians and, per stage, the median mean-block time of the T model
(rest-*) and the S model (mamba-*), their ratio, and the median of the per-round ratios.
"""
import collections
import glob
import json
import statistics
import sys

STAGES = ['encoder_level1', 'encoder_level2', 'encoder_level3', 'latent',
          'decoder_level3', 'decoder_level2', 'decoder_level1', 'refinement']


def blocks(path):
    """Mean block time per stage (ms) and the run's wall median from one `--json` profile."""
    with open(path) as f:
        data = json.load(f)
    per_block = collections.Counter()
    for k in data['kernels']:
        parts = k['scope'].split('.')
        if parts[0] in STAGES and len(parts) > 1 and parts[1].isdigit():
            per_block[(parts[0], parts[1])] += k['total_ms']
    stages = {}
    for s in STAGES:
        times = [t for (stage, _), t in per_block.items() if stage == s]
        if times:
            stages[s] = sum(times) / len(times)
    return stages, data['run_ms_median']


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: stage_medians.py DIR  (DIR holds rest-T-R.json and mamba-T-R.json profiles)')
    root = sys.argv[1]
    for threads in (2, 1):
        t_runs = [blocks(p) for p in sorted(glob.glob(f'{root}/rest-{threads}-*.json'))]
        s_runs = [blocks(p) for p in sorted(glob.glob(f'{root}/mamba-{threads}-*.json'))]
        if not t_runs or not s_runs:
            continue
        print(f'threads {threads}: T runs {[round(r[1]) for r in t_runs]} ms, S runs {[round(r[1]) for r in s_runs]} ms')
        print(f'  medians: T model {statistics.median(r[1] for r in t_runs):.0f} ms, '
              f'S model {statistics.median(r[1] for r in s_runs):.0f} ms')
        for s in STAGES:
            if not all(s in r[0] for r in t_runs + s_runs):
                continue
            t = statistics.median(r[0][s] for r in t_runs)
            v = statistics.median(r[0][s] for r in s_runs)
            paired = statistics.median(m[0][s] / r[0][s] for r, m in zip(t_runs, s_runs))
            print(f'  {s:16s} T {t:7.1f}  S {v:7.1f}  S/T of medians {v / t:.2f}  median of paired S/T {paired:.2f}')


if __name__ == '__main__':
    main()
