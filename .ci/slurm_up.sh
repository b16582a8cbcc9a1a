#!/usr/bin/env bash
# A one-node SLURM on this host for the cluster test (tests/experiments/test_cluster.py) and CI.
#
# Installs Debian's slurmctld, slurmd, slurm-client and munge when they are missing (needs
# root), writes /etc/slurm/slurm.conf for this host (no accounting, proctrack/linuxproc,
# select/cons_tres, the CPUs and memory `slurmd -C` reports, addressed as 127.0.0.1 so the
# host name need not resolve), starts munge, slurmctld and
# slurmd, and waits until the node takes jobs. `.ci/slurm_down.sh` stops what this started.
# An existing slurm.conf that this script did not write is never replaced.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by .ci/slurm_up.sh"
STATE=/run/avel-slurm  # pid files of the daemons started here

if [ "$(id -u)" != 0 ]; then
    echo "slurm_up.sh: needs root (installs packages and starts daemons)" >&2
    exit 1
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sinfo >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
fi
if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    echo "slurm_up.sh: $CONF exists and was not written here; not touching it" >&2
    exit 1
fi

mkdir -p "$STATE" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /etc/slurm
node_line=$(slurmd -C | head -n 1)  # NodeName=host CPUs=.. ... RealMemory=..
host=$(hostname -s)
cat > "$CONF" <<CONF
$MARK
ClusterName=avelci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

running() {  # running PIDFILE: the process of the pid file is alive
    [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}
mkdir -p /run/munge && chown munge:munge /run/munge
if ! running /run/munge/munged.pid; then
    runuser -u munge -- /usr/sbin/munged
    touch "$STATE/munged.started"
fi
running "$STATE/slurmctld.pid" || slurmctld
running "$STATE/slurmd.pid" || slurmd

for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
        sinfo
        exit 0
    fi
    sleep 1
done
echo "slurm_up.sh: the node did not come up; the logs:" >&2
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
