#!/usr/bin/env bash
# Stop the daemons that .ci/slurm_up.sh started (slurmd, slurmctld, and munged if it started it).
set -uo pipefail
STATE=/run/avel-slurm
for daemon in slurmd slurmctld; do
    if [ -f "$STATE/$daemon.pid" ]; then
        kill "$(cat "$STATE/$daemon.pid")" 2>/dev/null || true
        rm -f "$STATE/$daemon.pid"
    fi
done
if [ -f "$STATE/munged.started" ]; then
    kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
    rm -f "$STATE/munged.started"
fi
