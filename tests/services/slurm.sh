#!/bin/sh
# A one-host Slurm cluster on loopback for tests and benchmarks:
#   tests/services/slurm.sh start DIR   # munged, slurmctld, slurmd; prints SLURM_CONF=...
#   tests/services/slurm.sh stop DIR
# Everything (config, keys, sockets, spool, logs) lives in DIR, so several
# clusters may run on one machine on different ports. Debian 12's slurmctld,
# slurmd, slurm-client and munge (22.05) run it as root; the node has a fake
# `gpu` gres (two, backed by /dev/null) so GPU requests can be seen.
# RADPIPE_SLURM_PORT picks the controller's port (the node daemon's is the
# next one); default: a free pair found by probing.
set -eu
cmd=$1
dir=$(realpath -m "$2")

free_port() {
    python3 - <<'PY'
import socket
for base in range(20000, 40000, 2):
    ok = True
    for p in (base, base + 1):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            ok = False
        finally:
            s.close()
    if ok:
        print(base)
        break
PY
}

stop() {
    for d in slurmd slurmctld munged; do
        if [ -f "$dir/$d.pid" ]; then
            kill "$(cat "$dir/$d.pid")" 2>/dev/null || true
        fi
    done
    sleep 1
    for d in slurmd slurmctld munged; do
        if [ -f "$dir/$d.pid" ]; then
            kill -9 "$(cat "$dir/$d.pid")" 2>/dev/null || true
            rm -f "$dir/$d.pid"
        fi
    done
}

case "$cmd" in
stop)
    stop
    exit 0
    ;;
start) ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac

for tool in munged slurmctld slurmd sbatch; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
        echo "slurm.sh: \`$tool\` is not installed (apt-get install slurmctld slurmd slurm-client munge)" >&2
        exit 3
    }
done
PATH="$PATH:/usr/sbin"
mkdir -p "$dir/state" "$dir/spool/$(hostname -s)" "$dir/munge"
chmod 700 "$dir/munge"
port=${RADPIPE_SLURM_PORT:-$(free_port)}
host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ { print int($2 / 1024 * 0.8) }' /proc/meminfo)
user=$(id -un)

[ -f "$dir/munge/munge.key" ] || dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$dir/munge/munge.key"
munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed" --force

cat >"$dir/slurm.conf" <<CONF
ClusterName=radpipe-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
GresTypes=gpu
MinJobAge=300
EnforcePartLimits=ALL
DefMemPerCPU=1024
MaxArraySize=1001
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:2 State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
PartitionName=gpu Nodes=$host Default=NO MaxTime=INFINITE State=UP
CONF
touch "$dir/gpu0" "$dir/gpu1"
cat >"$dir/gres.conf" <<CONF
NodeName=$host Name=gpu Count=2 File=$dir/gpu[0-1]
CONF

export SLURM_CONF="$dir/slurm.conf"
slurmctld -c -f "$SLURM_CONF" || { tail -3 "$dir/slurmctld.log" >&2; stop; exit 1; }
slurmd -f "$SLURM_CONF" || { tail -3 "$dir/slurmd.log" >&2; stop; exit 1; }
# Ready when the node is idle.
i=0
until sinfo -h -o %T 2>/dev/null | grep -q '^idle'; do
    i=$((i + 1))
    if [ $i -gt 60 ]; then
        echo "slurm.sh: the node did not come up in 30 s; see $dir/slurmctld.log and $dir/slurmd.log" >&2
        tail -n 5 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
        stop
        exit 1
    fi
    sleep 0.5
done
echo "SLURM_CONF=$SLURM_CONF"
