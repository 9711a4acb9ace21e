//! Killing everything a command started, from inside the container.
//!
//! Every `docker exec` process is a session leader, so "the command and every process it
//! started" is the set of processes in that session, plus those that left it with `setsid`
//! (daemons, `setsid cmd &`). Those still inherit the session's environment, so a marker
//! variable finds them, as Jenkins' process-tree killer finds a build's daemons.
//! The killer is a bash function that uses only builtins: it must still work when a fork bomb
//! has used up the pids limit, so it can neither fork nor run `ps`/`pkill` (which SWE-bench
//! images need not have anyway).

/// Defines `__cwm_kill SID SPARE [MARK]`: SIGSTOP then SIGKILL every live process of session
/// SID, and every process whose environment holds the entry MARK, except pid SPARE, in rounds
/// until none is left (stopped processes cannot fork, so a fork bomb cannot outrun it). Zombies
/// are skipped: they are already dead. Pid 1 and the killer itself are never touched.
pub(crate) const KILLER_FN: &str = r#"__cwm_marked() {
    local entry
    local -a entries
    { mapfile -d '' -t entries <"/proc/$1/environ"; } 2>/dev/null || return 1
    for entry in "${entries[@]}"; do
        [[ $entry == "$2" ]] && return 0
    done
    return 1
}
__cwm_kill() {
    local target=$1 spare=$2 mark=${3:-} round f line p
    local -a fields victims
    for ((round = 0; round < 200; round++)); do
        victims=()
        for f in /proc/[0-9]*/stat; do
            { IFS= read -r line <"$f"; } 2>/dev/null || continue
            fields=(${line##*) })
            [[ ${fields[0]} != Z ]] || continue
            p=${f#/proc/}
            p=${p%/stat}
            [[ $p == "$spare" || $p == 1 || $p == "$$" ]] && continue
            if [[ ${fields[3]} != "$target" ]]; then
                [[ -n $mark ]] && __cwm_marked "$p" "$mark" || continue
            fi
            victims+=("$p")
        done
        ((${#victims[@]} == 0)) && break
        builtin kill -STOP "${victims[@]}" 2>/dev/null
        builtin kill -KILL "${victims[@]}" 2>/dev/null
    done
    return 0
}
"#;

/// A one-shot script that kills session `sid`, sparing nobody.
pub(crate) fn kill_session_script(sid: i64) -> String {
    format!("{KILLER_FN}__cwm_kill {sid} 0\n")
}
