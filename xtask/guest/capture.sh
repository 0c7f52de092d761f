#!/bin/sh
# Ground truth of the kvm fixture lab, run by /init right before the host
# stops the VM. Writes /out/truth.txt and /out/kallsyms.txt (verbatim
# /proc/kallsyms), puts both as a tar on /dev/vda, then waits for the next
# load-average update and leaves /proc/loadavg in /tmp/loadavg (init prints
# it with the ready line, so the host stops the VM seconds before the next
# update).
#
# truth.txt lines (parsed by xtask/src/fixtures.rs):
#   KVM-LAB-TRUTH 1
#   U <uname -r>
#   P <pid>            a process (thread-group leader)
#   T <tid>            a thread of the last P
#   F <name>           followed by `od -An -v -tx1` of a file, then "." (ok)
#                      or "!" (the file could not be read)
#   END
# Files: version, cmdline, modules (/proc), kmsg (the /dev/kmsg records logged so
# far: reading stops when the kernel has no more, after 1 s); per P: stat,
# status, comm, cmdline, environ; per T: stat, comm. Hex keeps NULs and any
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
		for t in /proc/$p/task/[0-9]*; do
			echo "T ${t##*/}"
			hexf stat "$t/stat"
			hexf comm "$t/comm"
		done
	done
	echo END
} > /out/truth.txt 2>/dev/null || exit 1
tar -cf /dev/vda -C /out truth.txt kallsyms.txt || exit 1
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
