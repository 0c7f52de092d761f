#!/bin/sh
# /init of the kvm fixture lab guest (busybox sh), put into the initramfs by
# `cargo xtask fixtures` (xtask/src/fixtures.rs has the whole plan).
#
# 1. mount /proc, /sys, /dev; insmod qemu_fw_cfg first (so QEMU's
#    `-device vmcoreinfo` gets VMCOREINFO), then the virtio modules for the
#    disk that carries the ground truth back to the host;
# 2. start the workload: the hard cases of docs/FIXTURES.md, each process
#    tagged with a distinctive KVM_MARKER_<n> environment variable;
# 3. let it run (a CPU burner pushes the load average up), run
#    /capture.sh (ground truth from /proc, written as a tar to /dev/vda),
#    print "KVM-LAB-READY <loadavg>" on the console and wait forever
#    without starting anything, so the host can stop the VM and dump it
#    (then print the nodename whenever it changes: the live test's write;
#    in the panic set, crash the kernel for the host's second dump).
#
# Lines starting with "kvm-lab:" are progress for the host to echo;
# "KVM-LAB-ERROR:" makes the host fail with that message.

export PATH=/bin
/bin/busybox --install -s /bin 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
dmesg -n 1

say() { echo "kvm-lab: $*" > /dev/console; }
fail() {
	echo "KVM-LAB-ERROR: $*" > /dev/console
	while :; do sleep 3600; done
}

. /etc/kvm-lab.conf || fail "no /etc/kvm-lab.conf"
say "init started for set $KVM_LAB_SET ($(uname -r))"

# qemu_fw_cfg comes first in /modules/order.
while read -r m; do
	insmod "/modules/$m.ko" || fail "insmod $m failed"
done < /modules/order
[ -e /sys/firmware/qemu_fw_cfg/by_name/etc/vmcoreinfo ] ||
	fail "no etc/vmcoreinfo in fw_cfg (is -device vmcoreinfo given? did qemu_fw_cfg load?)"
i=0
while [ ! -b /dev/vda ]; do
	i=$((i + 1))
	[ $i -gt 300 ] && fail "no /dev/vda after 30 s"
	usleep 100000
done
say "modules loaded: $(tr '\n' ' ' < /modules/order)"

mkfifo /tmp/forever || fail "mkfifo"
cd /
# The workload's output goes nowhere; its errors go to the console.
exec </dev/null >/dev/null

# 1: a plain sleeper.
env KVM_MARKER_1=plain-sleeper sleep 1000001 &

# 2: hundreds of arguments.
set --
i=1
while [ $i -le 400 ]; do set -- "$@" "many-$i"; i=$((i + 1)); done
env KVM_MARKER_2=many-args sh -c 'sleep 1000002; exit 0' kvm-many-args "$@" &

# 3: argv longer than a page (100 arguments of 70-odd bytes: about 7.5 KiB).
set --
i=1
while [ $i -le 100 ]; do
	set -- "$@" "long-argv-$i-0123456789abcdefghijklmnopqrstuvwxyz-0123456789-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	i=$((i + 1))
done
env KVM_MARKER_3=long-argv sh -c 'sleep 1000003; exit 0' kvm-long-argv "$@" &
set --

# 4: an environment value longer than 4 KiB ("1-2-3-...-1500", about 6.4 KiB).
env KVM_MARKER_4=long-env "KVM_LONG_ENV=$(seq -s - 1 1500)" sleep 1000004 &

# 5: uid 1000, gid 1000 (user "lab" in /etc/passwd).
env KVM_MARKER_5=uid-1000 su -s /bin/sh lab -c 'exec sleep 1000005' &

# 6: a zombie: the child "sleep 1" exits after its parent has exec'd sleep,
# which never reaps it. (With "sleep 0" the child can exit before the exec
# and be reaped by the shell: seen on a 6.12 guest.)
env KVM_MARKER_6=zombie-parent sh -c 'sleep 1 & exec sleep 1000006' &

# 7: a stopped process (SIGSTOP once it has exec'd, below).
env KVM_MARKER_7=stopped sleep 1000007 &
stopped=$!

# 8: a session leader.
env KVM_MARKER_8=session-leader setsid sleep 1000008 &

# 9: argv[0] ("sleep") differs from comm ("kvm-lab-argv0-d", the link name cut to 15 bytes).
env KVM_MARKER_9=argv0-differs sh -c 'exec -a sleep /bin/kvm-lab-argv0-differs 1000009' &

# 10: a script with a long name: comm "kvm-lab-long-sc", argv[0] "/bin/sh".
env KVM_MARKER_10=long-script-name /bin/kvm-lab-long-script-name one two &

# 11: a comm with spaces and parentheses: "kvm) odd (name".
env KVM_MARKER_11=odd-comm sh -c 'exec -a sleep "/bin/kvm) odd (name" 1000011' &

# 12: three threads: main "kvm-lab-threads", threads "kvm-thread-a", "kvm-thread-b".
env KVM_MARKER_12=threads /bin/kvm-lab-threads alpha beta &

# 13: control bytes, quotes, UTF-8, a byte that is not UTF-8, an empty argument.
env KVM_MARKER_13=odd-bytes "KVM_ODD_ENV=$(printf 'tab\there\nnewline\001ctl\033esc')" \
	sh -c 'sleep 1000013; exit 0' kvm-odd-bytes \
	"$(printf 'quote"back\\slash')" "$(printf 'utf8-\303\251-\342\202\254')" \
	"$(printf 'bad-\377-byte')" '' last &

# 14: a CPU burner, so the load average is well above zero.
env KVM_MARKER_14=burner sh -c 'while :; do :; done' &

# 15: open files (after exec, in sleep): a file read-write at offset 10,
# a file deleted after it was opened, /dev/null, a path longer than 200
# bytes, and a pipe as its standard input (from the sleep before it).
long=/tmp/kvm-lab-a-directory-with-a-rather-long-name-0123456789
long=$long/kvm-lab-another-directory-with-a-long-name-0123456789
long=$long/kvm-lab-a-third-directory-with-a-long-name-0123456789
mkdir -p "$long" || fail "mkdir $long"
long=$long/kvm-lab-a-file-with-a-long-path-0123456789
printf 'open at offset ten' > "$long"
printf 0123456789abcdef > /tmp/kvm-lab-rw
printf 'deleted' > /tmp/kvm-lab-deleted
sleep 1000016 | env KVM_MARKER_15=open-files KVM_LONG_PATH="$long" sh -c '
	exec 3<>/tmp/kvm-lab-rw 4</tmp/kvm-lab-deleted 5</dev/null 6<"$KVM_LONG_PATH"
	read -r -n 10 x <&3
	rm /tmp/kvm-lab-deleted
	exec sleep 1000015' &

# 16: a unix socket: busybox syslogd on /dev/log.
env KVM_MARKER_16=unix-socket syslogd -n -O /dev/null &

# The crowd: KVM_LAB_CROWD more processes (the scale set's; none in the
# others), each with KVM_CROWD=<n> in its environment, by turns: three
# threads (kvm-lab-threads), another user (crowd1, crowd2), 40 long
# arguments (a shell waiting for its sleep: two processes), a 2 KiB
# environment variable, a plain sleep.
if [ "${KVM_LAB_CROWD:-0}" -gt 0 ]; then
	crowd_env=$(seq -s - 1 600)
	set --
	i=1
	while [ $i -le 40 ]; do
		set -- "$@" "crowd-arg-$i-0123456789abcdefghijklmnopqrstuvwxyz"
		i=$((i + 1))
	done
	i=1
	while [ $i -le "$KVM_LAB_CROWD" ]; do
		s=$((2000000 + i))
		case $((i % 5)) in
		0) env KVM_CROWD=$i /bin/kvm-lab-threads "crowd-$i" & ;;
		1) env KVM_CROWD=$i su -s /bin/sh "crowd$((i % 2 + 1))" -c "exec sleep $s" & ;;
		2) env KVM_CROWD=$i sh -c "sleep $s; exit 0" "kvm-crowd-$i" "$@" & ;;
		3) env KVM_CROWD=$i "KVM_CROWD_ENV=$crowd_env" sleep $s & ;;
		*) env KVM_CROWD=$i sleep $s & ;;
		esac
		i=$((i + 1))
	done
	set --
	say "crowd of $KVM_LAB_CROWD started"
fi

sleep 2
kill -STOP $stopped || fail "kill -STOP"
say "workload started; letting it run ${KVM_LAB_SETTLE}s"
sleep "$KVM_LAB_SETTLE"

say "capturing ground truth"
sh /capture.sh || fail "capture failed"
read -r la < /tmp/loadavg || fail "no /tmp/loadavg"
# The nodename to watch is read before the ready line, so that the
# next thing after it is the wait (the host stops the VM within ms).
read -r old < /proc/sys/kernel/hostname
echo "KVM-LAB-READY $la" > /dev/console
# Wait without a child, in state S: read(2) of a FIFO nobody writes, opened
# read-write so that open(2) does not block, with a 2 s timeout (all shell
# builtins). Between waits, a changed nodename is printed on the console:
# `cargo xtask live` writes one into the running kernel's memory
# (init_uts_ns) and waits for "KVM-LAB-NODENAME <name>".
#
# The panic set (KVM_LAB_PANIC=1: `cargo xtask fixtures`, not the live
# step): on the second wake-up (4 s of guest time after the ready line;
# guest time stands while the host has the VM stopped for its dumps),
# init itself crashes the kernel through the sysrq trigger (a builtin
# echo: no new process), panic=0 first so that it stays down, and the
# host dumps it again.
waits=0
while :; do
	read -r -t 2 x <> /tmp/forever
	read -r n < /proc/sys/kernel/hostname
	if [ "$n" != "$old" ]; then
		echo "KVM-LAB-NODENAME $n" > /dev/console
		old=$n
	fi
	waits=$((waits + 1))
	if [ "$KVM_LAB_PANIC" = 1 ] && [ $waits -ge 2 ]; then
		echo 0 > /proc/sys/kernel/panic
		echo c > /proc/sysrq-trigger
	fi
done
