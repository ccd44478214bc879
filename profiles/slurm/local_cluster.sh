#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, to try profiles/slurm without a real cluster (Debian/Ubuntu,
# as root, no systemd needed): `profiles/slurm/local_cluster.sh up`, run snakemake with
# `--workflow-profile profiles/slurm`, then `profiles/slurm/local_cluster.sh down`.
#
# up:   installs slurm-wlm and munge with apt if missing, starts munged, slurmctld and slurmd by hand
#       (no accounting database: the profile polls with squeue), one partition "debug" with every core,
#       all memory but 1 GiB and $LOCAL_GPUS (default 2) stand-in GPUs, and waits until the node is idle.
#       The stand-in GPUs are GRES backed by /dev/null-like device files: jobs that ask for a GPU are
#       scheduled as on a GPU cluster (at most that many at once), and run on the CPU (device auto).
# down: stops each daemon by its pid file (never by name: other daemons on the machine are left alone).
set -euo pipefail

ACTION=${1:-}
PIDFILES=(/run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid)  # stopped in this order
CONF=/etc/slurm/slurm.conf

wait_for() {  # wait_for SECONDS CMD...: retry CMD every 0.25 s
  local seconds=$1; shift
  for _ in $(seq 1 $((seconds * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  echo "local_cluster: timed out waiting for: $*" >&2
  return 1
}

down() {
  for pidfile in "${PIDFILES[@]}"; do
    [ -s "$pidfile" ] || continue
    local pid; pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

up() {
  [ "$(id -u)" = 0 ] || { echo "local_cluster: must run as root (it starts the SLURM daemons)" >&2; exit 2; }
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q slurm-wlm munge >/dev/null || { apt-get update -q >/dev/null; apt-get install -y -q slurm-wlm munge >/dev/null; }
  fi
  local host; host=$(hostname -s)
  getent hosts "$host" >/dev/null || echo "127.0.1.1 $host" >> /etc/hosts  # slurmctld must resolve itself
  [ -s /etc/munge/munge.key ] || mungekey --create
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
  [ -s /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null || runuser -u munge -- /usr/sbin/munged
  wait_for 10 sh -c 'munge -n | unmunge'
  local mem cpus gpus; mem=$(( $(free -m | awk '/^Mem:/{print $2}') - 1024 )); cpus=$(nproc); gpus=${LOCAL_GPUS:-2}
  install -d /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
  cat > "$CONF" <<EOF
# Written by profiles/slurm/local_cluster.sh: one node, no accounting (poll with squeue).
ClusterName=local
SlurmctldHost=$host
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
MinJobAge=3600
KillWait=5
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
GresTypes=gpu
NodeName=$host CPUs=$cpus RealMemory=$mem Gres=gpu:$gpus State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=1000
EOF
  # slurmd counts a GPU only behind a device file: stand-ins are character devices like /dev/null (1,3)
  local i; for i in $(seq 0 $((gpus - 1))); do [ -e /dev/standin-gpu$i ] || mknod -m 666 /dev/standin-gpu$i c 1 3; done
  echo "NodeName=$host Name=gpu File=/dev/standin-gpu[0-$((gpus - 1))]" > /etc/slurm/gres.conf
  slurmctld -c                             # -c: a clean start, no jobs or node state from an earlier run
  slurmd
  wait_for 30 sh -c "sinfo -h -N -o %t | grep -qx idle"
  srun -t 1 true
  echo "local_cluster: up (partition debug, $cpus cores, ${mem} MB, $gpus stand-in GPUs)"
}

case "$ACTION" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up | down" >&2; exit 2 ;;
esac
