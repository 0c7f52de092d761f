#!/usr/bin/env bash
# Measure `kvm ps` and `kvm nlist` against drgn 0.3.0 and crash 8.0.2 on the
# same dumps of the lab (xtask lab), side by side, in one run. See README.md.
#
# Usage: bench/peers/run.sh [FORMAT...]
#   FORMAT: a key of truth.json's "dumps" (elf, elf-paging, kdump-zlib,
#   kdump-zlib-flat, makedumpfile-lzo, makedumpfile-zlib-d31);
#   default: elf makedumpfile-lzo kdump-zlib.
# Environment:
#   KVM_LAB   the lab (default ~/.cache/kvm-lab); dumps in $KVM_LAB/sets/$SET
#   SET       the lab set (default amd64-kaslr; crash and the -dbg package
#             here are x86-64 only)
#   RUNS      hyperfine runs per command (default 10; one warmup run first)
#   RSS_REPS  /usr/bin/time -v runs per command, the largest peak kept (3)
#   OUT       where results go (default $KVM_LAB/peers/results/$SET)
#   NO_CRASH=1  leave crash out
# Installs what is missing: hyperfine, crash, GNU time (Debian), drgn==0.3.0
# (pip), and the kernel's -dbg package (downloaded into $KVM_LAB/peers, only
# vmlinux extracted from it). Builds kvm in release mode.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
lab=${KVM_LAB:-$HOME/.cache/kvm-lab}
set_name=${SET:-amd64-kaslr}
setdir=$lab/sets/$set_name
runs=${RUNS:-10}
rss_reps=${RSS_REPS:-3}
out=${OUT:-$lab/peers/results/$set_name}
peers=$lab/peers
formats=("$@")
[ ${#formats[@]} -gt 0 ] || formats=(elf makedumpfile-lzo kdump-zlib)
nlist_names=(init_task jiffies _stext linux_banner)

[ -f "$setdir/truth.json" ] || { echo "no lab set at $setdir (cargo xtask lab)" >&2; exit 1; }
mkdir -p "$out" "$peers"

jq_truth() { python3 -c "import json,sys; d=json.load(open('$setdir/truth.json')); print(eval(sys.argv[1]))" "$1"; }
arch=$(jq_truth "d['arch']")               # x86_64 | aarch64
release=$(jq_truth "d['release']")         # 6.1.0-56-cloud-amd64
kver=$(jq_truth "d['kernel_package_version']")
debarch=$([ "$arch" = x86_64 ] && echo amd64 || echo arm64)
dbgpkg=linux-image-$release-dbg
vmlinux=$peers/dbg-$debarch/usr/lib/debug/boot/vmlinux-$release
[ "$arch" = x86_64 ] || NO_CRASH=1         # Debian's crash here is x86 only

# ---- tools -----------------------------------------------------------------
need_apt=()
command -v hyperfine >/dev/null || need_apt+=(hyperfine)
[ -x /usr/bin/time ] || need_apt+=(time)
[ -n "${NO_CRASH:-}" ] || command -v crash >/dev/null || need_apt+=(crash)
if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
fi
# The interpreter itself, not a pyenv shim (a shell script adding ~0.1 s to
# every drgn run).
py=$(python3 -c 'import sys; print(sys.executable)')
if [ "$("$py" -c 'import drgn; print(drgn.__version__)' 2>/dev/null)" != 0.3.0 ]; then
    "$py" -m pip install -q drgn==0.3.0
fi
if [ ! -f "$vmlinux" ]; then
    deb=$(ls "$peers"/"${dbgpkg}"_"${kver}"_*.deb 2>/dev/null | head -1 || true)
    if [ -z "$deb" ]; then
        (cd "$peers" && apt-get download "$dbgpkg=$kver")
        deb=$(ls "$peers"/"${dbgpkg}"_"${kver}"_*.deb | head -1)
    fi
    mkdir -p "$peers/dbg-$debarch"
    dpkg-deb --fsys-tarfile "$deb" |
        tar -x -C "$peers/dbg-$debarch" "./usr/lib/debug/boot/vmlinux-$release"
fi
(cd "$repo" && cargo build --release -q -p kvm)
# A copy, so that a cargo build elsewhere in the tree during the run cannot
# swap the binary under the measurement.
cp "$repo/target/release/kvm" "$out/kvm"
kvm=$out/kvm

{
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(uname -srm); $(nproc) cpus; $(awk '/MemTotal/ {print $2" kB"}' /proc/meminfo)"
    echo "kvm: $(cd "$repo" && git rev-parse --short HEAD)$(cd "$repo" && git diff --quiet HEAD -- . ':!bench' || echo ' (+ uncommitted changes)'); $($kvm --version)"
    echo "drgn: $("$py" -c 'import drgn; print(drgn.__version__)') (PyPI wheel; bundled $(ls "$("$py" -c 'import drgn,os; print(os.path.dirname(drgn.__file__))')/../drgn.libs" | grep -o 'libkdumpfile-.*' ))"
    echo "python: $py ($("$py" --version 2>&1))"
    [ -n "${NO_CRASH:-}" ] || echo "crash: $(crash --version | grep -m1 -o 'crash [0-9.]*')"
    echo "hyperfine: $(hyperfine --version)"
    echo "vmlinux: $vmlinux ($dbgpkg $kver)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "set: $setdir; formats: ${formats[*]}; runs: $runs (+1 warmup); rss reps: $rss_reps"
} | tee "$out/versions.txt"

printf 'ps\nexit\n' > "$out/crash-ps.in"

# The commands, per format. QEMU's kdump files name no architecture in their
# header: drgn needs the platform given (--arch).
dump_file() { jq_truth "d['dumps']['$1']"; }
drgn_arch() { case $1 in kdump-zlib|kdump-zlib-flat) echo "--arch $arch" ;; esac; }
cmd_kvm_ps() { echo "$kvm ps -M $setdir/$(dump_file "$1") --json > /dev/null"; }
cmd_drgn_ps() { echo "$py $here/drgn_ps.py $(drgn_arch "$1") --vmlinux $vmlinux $setdir/$(dump_file "$1") > /dev/null"; }
cmd_crash_ps() { echo "crash -s -i $out/crash-ps.in $vmlinux $setdir/$(dump_file "$1") > /dev/null 2>&1"; }
cmd_kvm_nlist() { echo "$kvm nlist -M $setdir/$(dump_file "$1") --json ${nlist_names[*]} > /dev/null"; }
cmd_drgn_nlist() { echo "$py $here/drgn_nlist.py $(drgn_arch "$1") $setdir/$(dump_file "$1") ${nlist_names[*]} > /dev/null"; }

# Peak RSS (kB): the largest "Maximum resident set size" of RSS_REPS runs.
peak_rss() {
    local cmd=$1 max=0 r i
    for ((i = 0; i < rss_reps; i++)); do
        r=$(/usr/bin/time -v sh -c "$cmd" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}')
        [ "$r" -gt "$max" ] && max=$r
    done
    echo "$max"
}

: > "$out/rss.tsv"
for f in "${formats[@]}"; do
    file=$(dump_file "$f")
    echo
    echo "=== $f ($file)"
    # -- agreement: kvm and drgn against truth.json and each other; crash's ps
    "$kvm" ps -M "$setdir/$file" --json > "$out/ps-kvm-$f.json"
    # shellcheck disable=SC2046
    "$py" "$here/drgn_ps.py" $(drgn_arch "$f") --vmlinux "$vmlinux" "$setdir/$file" > "$out/ps-drgn-$f.json"
    python3 "$here/compare.py" "$setdir/truth.json" kvm="$out/ps-kvm-$f.json" drgn="$out/ps-drgn-$f.json" \
        | tee "$out/agree-$f.txt" || true
    if [ -z "${NO_CRASH:-}" ]; then
        crash -s -i "$out/crash-ps.in" "$vmlinux" "$setdir/$file" > "$out/ps-crash-$f.txt" 2>&1 || true
        echo "crash ps: $(grep -cE '^[> ] +[0-9]+ ' "$out/ps-crash-$f.txt") tasks listed (see ps-crash-$f.txt)" \
            | tee -a "$out/agree-$f.txt"
    fi
    "$kvm" nlist -M "$setdir/$file" --json "${nlist_names[@]}" > "$out/nlist-kvm-$f.json"
    # shellcheck disable=SC2046
    "$py" "$here/drgn_nlist.py" $(drgn_arch "$f") --check "$setdir/kallsyms.txt" \
        "$setdir/$file" "${nlist_names[@]}" > "$out/nlist-drgn-$f.json" 2> "$out/nlist-drgn-check-$f.txt"
    cat "$out/nlist-drgn-check-$f.txt" | tee -a "$out/agree-$f.txt"
    if cmp -s "$out/nlist-kvm-$f.json" "$out/nlist-drgn-$f.json"; then
        echo "nlist: kvm and drgn agree on ${nlist_names[*]}" | tee -a "$out/agree-$f.txt"
    else
        echo "nlist: kvm and drgn DIFFER" | tee -a "$out/agree-$f.txt"
    fi

    # where drgn's time goes (phases inside one run; 3 runs)
    for i in 1 2 3; do
        # shellcheck disable=SC2046
        "$py" "$here/drgn_ps.py" --timings $(drgn_arch "$f") --vmlinux "$vmlinux" "$setdir/$file" 2>&1 >/dev/null |
            grep ' ms$' | paste -sd ';' -
    done | tee "$out/drgn-phases-$f.txt"

    # -- time: ps
    ps_cmds=(-n kvm "$(cmd_kvm_ps "$f")" -n drgn "$(cmd_drgn_ps "$f")")
    [ -n "${NO_CRASH:-}" ] || ps_cmds+=(-n crash "$(cmd_crash_ps "$f")")
    hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$out/time-ps-$f.json" "${ps_cmds[@]}"
    # -- time: symbols without vmlinux
    hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$out/time-nlist-$f.json" \
        -n kvm "$(cmd_kvm_nlist "$f")" -n drgn "$(cmd_drgn_nlist "$f")"

    # -- peak RSS
    for tool in kvm drgn crash; do
        [ "$tool" = crash ] && [ -n "${NO_CRASH:-}" ] && continue
        printf '%s\tps\t%s\t%s\n' "$f" "$tool" "$(peak_rss "$(cmd_${tool}_ps "$f")")" >> "$out/rss.tsv"
        [ "$tool" = crash ] && continue
        printf '%s\tnlist\t%s\t%s\n' "$f" "$tool" "$(peak_rss "$(cmd_${tool}_nlist "$f")")" >> "$out/rss.tsv"
    done
done

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/versions.txt"
echo
python3 "$here/summary.py" "$out" "${formats[@]}" | tee "$out/summary.md"
