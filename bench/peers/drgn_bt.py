# drgn 0.3.0: every task's stack trace, by function name, as `kvm bt --all
# --json` gives them (bench/peers/README.md, "Backtraces and the log").
# Run: drgn -q -s VMLINUX -c DUMP bench/peers/drgn_bt.py
import sys, json
from drgn.helpers.linux.pid import for_each_task
out = []
for t in for_each_task(prog):
    try:
        tr = prog.stack_trace(t)
        fr = [f.name for f in tr]
    except Exception as e:
        fr = [str(e)]
    out.append({"pid": t.pid.value_(), "frames": fr})
print(len(out))
