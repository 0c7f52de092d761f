#!/bin/sh
# Ground truth of the kvm fixture lab, run by /init right before the host
# stops the VM. Writes /out/truth.txt and /out/kallsyms.txt (verbatim
# /proc/kallsyms), then runs the guest's own kvm (/bin/kvm) on the running
# kernel into /out/live/, puts all of it as a tar on /dev/vda, then waits
# for the next load-average update and leaves /proc/loadavg in /tmp/loadavg
# (init prints it with the ready line, so the host stops the VM seconds
# before the next update).
#
# truth.txt lines (parsed by xtask/src/fixtures/truth.rs):
#   KVM-LAB-TRUTH 1
#   U <uname -r>
#   P <pid>            a process (thread-group leader)
#   T <tid>            a thread of the last P
#   F <name>           followed by `od -An -v -tx1` of a file, then "." (ok)
#                      or "!" (the file could not be read)
#   END
# Files: version, cmdline, modules (/proc), kmsg (the /dev/kmsg records logged so
# far: reading stops when the kernel has no more, after 1 s); per P: stat,
# status, comm, cmdline, environ, maps, wchan, and per descriptor N "fd N" (its
# /proc/PID/fd link) and "fdinfo N"; per T: stat, comm, stack (the kernel's
# own backtrace of a task not running: /proc/PID/task/TID/stack). Hex keeps NULs and any
# other byte intact.

me=$$
hexf() {
	echo "F $1"
	if od -An -v -tx1 "$2"; then echo .; else echo '!'; fi
}

mkdir -p /out || exit 1
cat /proc/kallsyms > /out/kallsyms.txt || exit 1
# /dev/kmsg blocks at its end: the reader runs in the background, is
# killed after a second and waited for, so that no process of its own is
# left when the process list is taken. (`timeout 1 cat` is not enough:
# busybox's timeout forks a watcher, reparented to init, that kills cat
# and may still be alive at the glob below; a CI run's truth once held two
# user processes its dumps did not.)
cat /dev/kmsg > /out/kmsg.txt &
kmsg=$!
sleep 1
kill $kmsg
wait $kmsg
[ -s /out/kmsg.txt ] || exit 1
read -r rel < /proc/sys/kernel/osrelease
{
	echo "KVM-LAB-TRUTH 1"
	echo "U $rel"
	hexf version /proc/version
	hexf cmdline /proc/cmdline
	hexf kmsg /out/kmsg.txt
	hexf modules /proc/modules
	# One glob, no child running: the list holds the workload, init and
	# the kernel threads, and nothing this script starts.
	pids=
	for d in /proc/[0-9]*; do pids="$pids ${d#/proc/}"; done
	for p in $pids; do
		[ "$p" = "$me" ] && continue
		echo "P $p"
		hexf stat "/proc/$p/stat"
		hexf status "/proc/$p/status"
		hexf comm "/proc/$p/comm"
		hexf cmdline "/proc/$p/cmdline"
		hexf environ "/proc/$p/environ"
		hexf maps "/proc/$p/maps"
		hexf wchan "/proc/$p/wchan"
		# Each descriptor: its /proc/PID/fd link and its fdinfo.
		for f in /proc/$p/fd/[0-9]*; do
			[ -L "$f" ] || continue
			n=${f##*/}
			readlink "$f" > /tmp/fdlink || continue
			hexf "fd $n" /tmp/fdlink
			hexf "fdinfo $n" "/proc/$p/fdinfo/$n"
		done
		for t in /proc/$p/task/[0-9]*; do
			echo "T ${t##*/}"
			hexf stat "$t/stat"
			hexf comm "$t/comm"
			hexf stack "$t/stack"
		done
	done
	echo END
} > /out/truth.txt 2>/dev/null || exit 1

# kvm inside the guest: /bin/kvm (the workspace's kvm command, static musl)
# reads the running kernel (no -M: /proc/kcore) right after the capture
# above, and the lab (kvm/tests/lab/in_guest.rs) compares what it printed
# with that truth. Each run leaves its stdout in /out/live/NAME.EXT, its
# stderr in /out/live/NAME.err and a line in /out/live/status.txt:
#   NAME exit=STATUS pid=PID start=UPTIME end=UPTIME args=ARGS
# PID is the run's own: the `sh -c` writes its $$, then execs kvm. It and
# this shell ("shell pid=" in the first line) are the processes kvm lists
# that the truth has not (the truth leaves this shell out). A failing run
# is recorded, never fatal: the lab says what it means. All runs are over
# before the load-average wait below.
mkdir -p /out/live || exit 1
echo "shell pid=$me" > /out/live/status.txt
run_live() {
	n=$1 ext=$2 prog=$3
	shift 3
	read -r t0 rest < /proc/uptime
	sh -c 'echo $$ > "$0"; exec "$@"' "/out/live/$n.pid" "$prog" "$@" \
		> "/out/live/$n.$ext" 2> "/out/live/$n.err"
	rc=$?
	read -r t1 rest < /proc/uptime
	pid=?
	read -r pid < "/out/live/$n.pid"
	rm -f "/out/live/$n.pid"
	echo "$n exit=$rc pid=$pid start=$t0 end=$t1 args=$*" >> /out/live/status.txt
}
live() {
	n=$1 ext=$2
	shift 2
	run_live "$n" "$ext" kvm "$@"
}
live ps json ps --json
live ps-threads json ps --threads --json
# Text and data symbols: arm64's kallsyms has no data symbols (no
# KALLSYMS_ALL), kvm may still find some (VMCOREINFO).
live nlist json nlist --json _stext schedule start_kernel init_task init_uts_ns \
	jiffies avenrun linux_banner
# /proc/loadavg read just before and just after kvm's: kvm's must be one of
# the two (they differ when the kernel updated it meanwhile).
read -r la0 < /proc/loadavg
live loadavg json loadavg --json
read -r la1 < /proc/loadavg
printf '%s\n%s\n' "$la0" "$la1" > /out/live/loadavg.proc
live info json info --json
# /dev/mem: RAM (32 MiB into it) is refused under CONFIG_STRICT_DEVMEM;
# the BIOS area at 0xf0000 (x86's first MiB, not RAM) is let through.
case $(uname -m) in
aarch64) ram=0x42000000 ;; # QEMU virt: RAM from 1 GiB
*) ram=0x2000000 ;;
esac
live devmem-ram bin read -M /dev/mem --phys $ram 16
live devmem-low bin read -M /dev/mem --phys 0xf0000 16
# The C interface's live cases (kvm/tests/c/in_guest.c, static with
# libkvm.a; the lab's in_guest_c test reads capi.jsonl), with an argument
# of two words for its own kvm_getargv check.
run_live capi jsonl kvm-capi-in-guest --kvm-lab-capi 'two words'

tar -cf /dev/vda -C /out truth.txt kallsyms.txt live || exit 1
sync

# The kernel updates the load average every 5 s: wait for the next update
# (at most 7 s), so the host's stop lands well before the one after.
read -r a < /proc/loadavg
set -- $a
first="$1 $2 $3"
read -r up rest < /proc/uptime
end=$((${up%.*} + 7))
while :; do
	read -r b < /proc/loadavg
	set -- $b
	[ "$1 $2 $3" != "$first" ] && break
	read -r up rest < /proc/uptime
	[ "${up%.*}" -ge "$end" ] && break
done
echo "$b" > /tmp/loadavg
