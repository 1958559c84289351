# slurm-cluster.sh — a one-node Slurm for tests and benchmarks, from Debian's
# slurm-wlm and munge, started as root without systemd (sourced by
# tests/cli/t8000-slurm.sh and tests/bench/slurm/run.sh).
#   slurm_up DIR [SCHEDULER_PARAMETERS]  munged, slurmctld, slurmd with every
#       file under DIR (key, sockets, state, logs, slurm.conf); exports
#       SLURM_CONF; returns 0 once sinfo says the node is idle, else 1 with
#       the reason in SLURM_UP_WHY
#   slurm_down DIR  cancels every job, stops the daemons by their pid files
# The node has a gres gpu:1 backed by /dev/null: without hardware Slurm needs
# a device file to stat, and jobs asking --gres=gpu:1 are then scheduled
# against it as on a GPU node.
slurm_up() {
    _sd=$1 _sp=${2-sched_interval=1}
    SLURM_UP_WHY=
    for _c in munged slurmctld slurmd sbatch squeue scontrol scancel sinfo runuser; do
        command -v $_c >/dev/null 2>&1 || { SLURM_UP_WHY="$_c not found: make deps installs slurm-wlm and munge"; return 1; }
    done
    [ "$(id -u)" = 0 ] || { SLURM_UP_WHY="not root: munged, slurmctld and slurmd are started as root"; return 1; }
    getent passwd munge >/dev/null || { SLURM_UP_WHY="no munge user"; return 1; }
    export SLURM_CONF="$_sd/slurm.conf"
    # a test run inside a Slurm job must not talk to that job's cluster
    for _v in $(env | sed -n 's/^\(SLURM_[A-Z_]*\)=.*/\1/p'); do [ "$_v" = SLURM_CONF ] || unset "$_v"; done
    # munged wants its socket's directory searchable by everyone, its key private
    chmod 711 "$(dirname "$_sd")" 2>/dev/null
    mkdir -p "$_sd/munge" "$_sd/mkey" "$_sd/state" "$_sd/spool" "$_sd/log" || { SLURM_UP_WHY="cannot create $_sd"; return 1; }
    chmod 755 "$_sd"
    chown munge:munge "$_sd/munge" "$_sd/mkey" && chmod 755 "$_sd/munge" && chmod 700 "$_sd/mkey"
    dd if=/dev/urandom of="$_sd/mkey/munge.key" bs=1024 count=1 2>/dev/null
    chown munge:munge "$_sd/mkey/munge.key" && chmod 600 "$_sd/mkey/munge.key"
    if ! runuser -u munge -- munged --socket="$_sd/munge/sock" --key-file="$_sd/mkey/munge.key" \
            --pid-file="$_sd/mkey/munged.pid" --log-file="$_sd/mkey/munged.log" --seed-file="$_sd/mkey/seed" \
            2>"$_sd/munged.err"; then
        SLURM_UP_WHY="munged did not start: $(head -n 1 "$_sd/munged.err")"; return 1
    fi
    _h=$(hostname -s)
    _mem=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p'); _mem=${_mem:-2048}
    [ "$_mem" -gt 4096 ] && _mem=4096
    _port=$((20000 + $$ % 20000))
    cat > "$_sd/slurm.conf" <<C
ClusterName=isopipe-test
SlurmctldHost=$_h
SlurmUser=root
SlurmctldPort=$_port
SlurmdPort=$((_port + 1))
AuthType=auth/munge
AuthInfo=socket=$_sd/munge/sock
CredType=cred/munge
StateSaveLocation=$_sd/state
SlurmdSpoolDir=$_sd/spool
SlurmctldPidFile=$_sd/slurmctld.pid
SlurmdPidFile=$_sd/slurmd.pid
SlurmctldLogFile=$_sd/log/slurmctld.log
SlurmdLogFile=$_sd/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
${_sp:+SchedulerParameters=$_sp}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
KillWait=2
MinJobAge=3600
GresTypes=gpu
NodeName=$_h CPUs=$(nproc) RealMemory=$_mem Gres=gpu:1 State=UNKNOWN
PartitionName=test Nodes=$_h Default=YES MaxTime=INFINITE State=UP
C
    echo "NodeName=$_h Name=gpu Count=1 File=/dev/null" > "$_sd/gres.conf"
    if ! slurmctld -f "$_sd/slurm.conf" 2>"$_sd/ctld.err" || ! slurmd -f "$_sd/slurm.conf" 2>"$_sd/slurmd.err"; then
        SLURM_UP_WHY="slurmctld/slurmd did not start: $(cat "$_sd/ctld.err" "$_sd/slurmd.err" | head -n 1)"; return 1
    fi
    _st= _end=$(($(date +%s) + 20))
    while [ "$(date +%s)" -lt $_end ]; do
        _st=$(timeout 2 sinfo -h -o %t 2>/dev/null)
        [ "$_st" = idle ] && return 0
        sleep 0.2
    done
    SLURM_UP_WHY="the node is '$_st', not idle, after 20 s: $(tail -n 2 "$_sd/log/slurmctld.log" | tr '\n' ' ')"
    return 1
}

slurm_down() {
    _sd=$1
    [ -e "$_sd/slurm.conf" ] || return 0
    SLURM_CONF="$_sd/slurm.conf" timeout 5 scancel --user root >/dev/null 2>&1
    for _p in "$_sd/slurmd.pid" "$_sd/slurmctld.pid" "$_sd/mkey/munged.pid"; do
        [ -s "$_p" ] && kill "$(cat "$_p" 2>/dev/null)" 2>/dev/null
    done
    _i=0
    while [ $_i -lt 50 ]; do
        _alive=0
        for _p in "$_sd/slurmd.pid" "$_sd/slurmctld.pid"; do
            [ -s "$_p" ] && kill -0 "$(cat "$_p" 2>/dev/null)" 2>/dev/null && _alive=1
        done
        [ $_alive = 0 ] && break
        sleep 0.1; _i=$((_i + 1))
    done
}
