# Shared set-up of the shell benchmarks (sourced, not run): the hybridc binary (built when missing), a scratch
# directory removed on exit, a seeded random input image for a CxHxW size, and the machine line every table
# starts with. Callers set `root` first.
hybridc="$root/.build/release/hybridc"
[ -x "$hybridc" ] || (cd "$root" && swift build -c release --product hybridc >&2)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# random_image FILE CxHxW: a seeded uniform [0, 1) image as .npy.
random_image() {
    python3 - "$1" "$2" <<'PY'
import sys, numpy as np
c, h, w = map(int, sys.argv[2].split("x"))
np.save(sys.argv[1], np.random.default_rng(0).random((c, h, w), dtype=np.float32))
PY
}

# machine_line: CPU model, cores and memory of this host.
machine_line() {
    echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# median_ms PROGRAM INPUT THREADS REPEAT: median wall time of REPEAT runs after one warm-up, in ms.
median_ms() {
    "$1" "$2" "$work/out.npy" --threads "$3" >/dev/null 2>&1
    "$1" "$2" "$work/out.npy" --threads "$3" --repeat "$4" 2>&1 | grep '^run:' | sed -E 's/.*median ([0-9.]+) ms.*/\1/'
}
