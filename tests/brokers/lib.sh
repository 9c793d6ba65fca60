# shellcheck shell=bash
# Small helpers shared by the scripts in tests/brokers/ (sourced, not executed).
# They need nothing but bash and coreutils; log lines start with "$LOG_PREFIX: ".

LOG_PREFIX="${LOG_PREFIX:-brokers}"

log() { echo "$LOG_PREFIX: $*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# show_log FILE...: the tail of each existing log, indented.
show_log() {
    local file
    for file in "$@"; do
        [[ -s $file ]] || continue
        log "last lines of $file:"
        tail -n 40 "$file" | sed 's/^/  | /' >&2
    done
}

# port_open HOST PORT: a TCP connection to HOST:PORT succeeds within 2 s.
port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# kafka_answers_on HOST PORT: a Kafka ApiVersions request (v0) to HOST:PORT gets a Kafka reply
# (our correlation id back, error code none or UNSUPPORTED_VERSION). Takes milliseconds.
# Only for PLAINTEXT listeners. A KRaft broker's data-plane listeners start answering once the
# broker has caught up with the metadata log and been unfenced.
kafka_answers_on() {
    local reply
    # shellcheck disable=SC2016  # $0/$1 expand in the inner shell
    reply=$(timeout 3 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "\x00\x00\x00\x0c\x00\x12\x00\x00\x45\x57\x00\x01\x00\x02ew" >&3
        head -c 10 <&3 | od -An -tx1' "$1" "$2" 2>/dev/null | tr -d ' \n') || return 1
    [[ ${reply:8:8} == 45570001 && ${reply:16:4} =~ ^(0000|0023)$ ]]
}

# write_if_changed DEST MODE < content: replace DEST when the content differs;
# returns 0 when it wrote the file, 1 when DEST was already up to date.
write_if_changed() {
    local dest=$1 mode=$2 tmp
    tmp=$(mktemp "$dest.XXXXXX")
    cat >"$tmp"
    if [[ -f $dest ]] && cmp -s "$tmp" "$dest"; then
        rm -f "$tmp"
        return 1
    fi
    chmod "$mode" "$tmp"
    mv -f "$tmp" "$dest"
}

# proc_matches PID WORD: process PID is alive and its command line contains WORD.
proc_matches() {
    [[ -n $1 && -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"
}

# alive PID: the process exists and is not a zombie (an exited child that init has not
# reaped yet still answers kill -0).
alive() {
    local state
    state=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    state=${state##*) } # drop "pid (comm) ", comm may hold spaces
    [[ -n $state && ${state:0:1} != Z ]]
}

# rss_mib PID: the resident set size of PID in MiB (empty when it is gone).
rss_mib() {
    local kib
    kib=$(ps -o rss= -p "$1" 2>/dev/null | tr -d ' ') || return 1
    [[ -n $kib ]] && echo $((kib / 1024))
}

rotate_log() {
    [[ -f $1 ]] && mv -f "$1" "$1.1"
    return 0
}
