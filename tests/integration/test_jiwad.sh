#!/usr/bin/env bash
# jiwad end to end: config validation, plugin help, signals (reload, stats,
# stop), the demo, JSON logs. Usage: test_jiwad.sh JIWAD PLUGIN_DIR SRC_DIR
set -uo pipefail
JIWAD="$1" PLUGINS="$2" SRC="$3"
T="$(mktemp -d "${TMPDIR:-/tmp}/jiwa-jiwad-XXXXXX")"
trap '[ "$PID" -gt 0 ] && kill "$PID" 2>/dev/null; rm -rf "$T"' EXIT
PID=0 pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [ -n "${2:-}" ] && sed 's/^/       /' "$2" | tail -20; }
expect() { # name want_exit needle cmd...
  local name="$1" want="$2" needle="$3"; shift 3
  "$@" >"$T/out" 2>&1; local rc=$?
  if [ "$rc" = "$want" ] && grep -qF -- "$needle" "$T/out"; then ok "$name"
  else bad "$name (exit $rc, want $want, looking for '$needle')" "$T/out"; fi
}
conf() { # file body
  cat >"$T/$1" <<CONF
return {
  workers = 2, plugin_dir = "$PLUGINS", state_dir = "$T/state",
  $2
}
CONF
}

expect "default config is valid" 0 "is valid: 13 actors loaded" \
  "$JIWAD" --check -c "$SRC/config/jiwa.lua"

conf typo.lua 'runtime = { ask_timeout = 5 },'
expect "unknown key names the key and the fix" 2 "ask_timeout_ms" \
  "$JIWAD" --check -c "$T/typo.lua"

conf syntax.lua 'log = { level = "info" ,, },'
expect "syntax error names the file and line" 2 "syntax.lua:3" \
  "$JIWAD" --check -c "$T/syntax.lua"

conf ghost.lua 'actors = { { name = "g", plugin = "ghost" } },'
expect "missing plugin refuses to start" 1 "plugin 'ghost' not found" \
  "$JIWAD" --check -c "$T/ghost.lua"

conf badset.lua 'actors = { { name = "e", plugin = "echo", config = { delay_ms = "soon" } } },'
expect "bad plugin setting refuses to start" 1 "delay_ms" \
  "$JIWAD" --check -c "$T/badset.lua"

expect "missing config file" 2 "nope.lua" "$JIWAD" --check -c "$T/nope.lua"
expect "bad flag" 2 "usage" "$JIWAD" --frobnicate
expect "plugin help lists settings" 0 "greeting" \
  "$JIWAD" --plugin-help echo -c "$SRC/config/jiwa.lua"
# The shipped config with its offline models: mockllm on a port of its own
# (the config's 8088 may be taken), the repository's scripts and knowledge.
MOCK="$(dirname "$JIWAD")/tools/mockllm/mockllm"
"$MOCK" --port 0 --port-file "$T/mock.port" --quiet 2>"$T/mock.log" &
MOCKPID=$!
for _ in $(seq 1 100); do [ -s "$T/mock.port" ] && break; sleep 0.05; done
sed -e "s#127.0.0.1:8088#127.0.0.1:$(cat "$T/mock.port")#" \
    -e "s#config_dir .. \"/..\"#\"$SRC\"#" \
    -e "s#plugin_dir = \"../build/plugins\"#plugin_dir = \"$PLUGINS\"#" \
    -e "s#state_dir = \"../build/state\"#state_dir = \"$T/state-demo\"#" \
    "$SRC/config/jiwa.lua" >"$T/shipped.lua"
expect "demo runs and exits" 0 "demo done" \
  "$JIWAD" --demo-exit -c "$T/shipped.lua"
cp "$T/out" "$T/demo.out"
expect "the demo's chat goes through the hybrid policy" 0 "[id, hybrid]" cat "$T/demo.out"
expect "the demo hits the golden cache" 0 "[en, golden]" cat "$T/demo.out"
kill "$MOCKPID"; wait "$MOCKPID" 2>/dev/null

# A running daemon: SIGHUP reloads, SIGUSR1 logs stats, SIGTERM stops.
conf run.lua 'log = { format = "json" }, actors = { { name = "echo", plugin = "echo" }, { name = "tpl", plugin = "template" } },'
: >"$T/run.log"  # truncated now: the & job would do it later (a race)
"$JIWAD" -c "$T/run.lua" >>"$T/run.log" 2>&1 &
PID=$!
wait_for() { for _ in $(seq 1 300); do grep -qF -- "$1" "$T/run.log" && return 0; sleep 0.1; done; return 1; }
# wait until "$1" was logged at least $2 times (several actors reloading)
wait_for_n() { for _ in $(seq 1 300); do [ "$(grep -cF -- "$1" "$T/run.log")" -ge "$2" ] && return 0; sleep 0.1; done; return 1; }
if wait_for "serving"; then ok "daemon starts"; else bad "daemon starts" "$T/run.log"; fi
kill -HUP "$PID"
if wait_for "reloaded: plugin template"; then ok "SIGHUP reloads every plugin"; else bad "SIGHUP reload" "$T/run.log"; fi
kill -USR1 "$PID"
if wait_for '"component":"stats"'; then ok "SIGUSR1 logs stats"; else bad "SIGUSR1 stats" "$T/run.log"; fi
if grep -v '^{"ts":"' "$T/run.log" | grep -q .; then bad "every log line is JSON" "$T/run.log"; else ok "every log line is JSON"; fi
kill -TERM "$PID"
wait "$PID"; rc=$?
if [ "$rc" = 0 ] && grep -qF '"msg":"stopped"' "$T/run.log"; then ok "SIGTERM stops cleanly"; else bad "SIGTERM stop (exit $rc)" "$T/run.log"; fi
PID=0

# runtime.watch_plugins: replacing a plugin file reloads its actors.
mkdir -p "$T/pdir" && chmod 700 "$T/pdir"
cp "$PLUGINS/echo.so" "$T/pdir/echo.so"
cat >"$T/watch.lua" <<CONF
return { workers = 1, plugin_dir = "$T/pdir", state_dir = "$T/state2",
         runtime = { watch_plugins = true },
         actors = { { name = "echo", plugin = "echo" } } }
CONF
: >"$T/run.log"  # truncated now: the & job would do it later (a race)
"$JIWAD" -c "$T/watch.lua" >>"$T/run.log" 2>&1 &
PID=$!
if wait_for "watching"; then ok "plugin dir watched"; else bad "plugin dir watched" "$T/run.log"; fi
cp "$PLUGINS/echo.so" "$T/pdir/echo.so.new" && mv "$T/pdir/echo.so.new" "$T/pdir/echo.so"
if wait_for "reloaded: plugin echo"; then ok "a changed plugin file is reloaded"; else bad "file watch reload" "$T/run.log"; fi
kill -TERM "$PID"; wait "$PID"; PID=0

# The policy engine behind the chat route, driven with the jiwa CLI.
JIWA="$(dirname "$JIWAD")/jiwa"
cat >"$T/p.lua" <<'LUA'
function on_chat(req) return { text = "policy says " .. req.text } end
LUA
cat >"$T/pol.lua" <<CONF
-- one router per worker, each with its own Lua state, chats spread over both
local router = { file = "$T/p.lua", fallback_actor = "echo", fallback_type = "chat" }
return { workers = 2, plugin_dir = "$PLUGINS", state_dir = "$T/state3",
         chat = { actor = "router0,router1" },
         actors = {
           { name = "echo", plugin = "echo" },
           { name = "router0", plugin = "policy", worker = 0, config = router },
           { name = "router1", plugin = "policy", worker = 1, config = router } } }
CONF
: >"$T/run.log"  # truncated now: the & job would do it later (a race)
"$JIWAD" -c "$T/pol.lua" >>"$T/run.log" 2>&1 &
PID=$!
export JIWA_SOCKET="$T/state3/jiwad.sock"
wait_for "serving" || true
expect "chat goes through the policy" 0 "policy says halo" "$JIWA" chat halo
expect "policy show" 0 "p.lua" "$JIWA" policy show
printf 'function on_chat(req)\n  return {\nend\n' >"$T/p.lua"
expect "a broken policy is refused with its line" 1 "p.lua:3:" "$JIWA" policy reload
expect "the old policy keeps serving" 0 "policy says still" "$JIWA" chat still
printf 'function on_chat(req) error("boom") end\n' >"$T/p.lua"
expect "reload of a policy that fails at run time (both routers)" 0 "p.lua: 1 requests" "$JIWA" policy reload
expect "a failing policy falls back to the plain route" 0 "halo, again" "$JIWA" chat again
expect "... on the other router too" 0 "halo, more" "$JIWA" chat more
expect "explain shows the fallback" 0 "the fallback route answered" "$JIWA" chat explained --explain
expect "a plugin-served op without its actor is named" 1 "golden_cache" "$JIWA" golden list
expect "store check walks the store" 0 "status: ok" "$JIWA" store check
expect "store backup makes a compacted copy" 0 "path: $T/backup" "$JIWA" store backup "$T/backup"
if [ -s "$T/backup/data.mdb" ]; then ok "the backup is an LMDB environment"; else bad "backup file" "$T/out"; fi
expect "a backup never overwrites a store" 1 "choose a new directory" "$JIWA" store backup "$T/backup"
# SIGHUP reloads plugins, the policy engine with them: its init reads the
# file again (a broken file would leave the running version serving).
printf 'function on_chat(req) return { text = "v2 " .. req.text } end\n' >"$T/p.lua"
kill -HUP "$PID"
wait_for_n "reloaded: plugin policy" 2 || true  # both routers
expect "SIGHUP reloads the policy" 0 "v2 hup" "$JIWA" chat hup
kill -TERM "$PID"; wait "$PID"; PID=0

# The knowledge collection: import the starter pack, search it, refuse a
# bad file whole.
cat >"$T/know.lua" <<CONF
return { workers = 1, plugin_dir = "$PLUGINS", state_dir = "$T/state4",
         store = { durability = "fast",
                   collections = { { name = "cultural", embedder = "hash", dim = 256 } } },
         actors = { { name = "knowledge", plugin = "knowledge" } } }
CONF
: >"$T/run.log"
"$JIWAD" -c "$T/know.lua" >>"$T/run.log" 2>&1 &
PID=$!
export JIWA_SOCKET="$T/state4/jiwad.sock"
wait_for "serving" || true
expect "knowledge import" 0 "imported: 175" "$JIWA" knowledge import "$SRC/config/knowledge/insights_id.jsonl"
expect "knowledge search finds malu" 0 "ins-id-emotions-malu" "$JIWA" knowledge search aku malu bertanya soal visa --lang id --k 3
printf '{"id":"ins-id-x-01","lang":"id"}\n' >"$T/bad.jsonl"
expect "a bad import is refused with its line" 1 "line 1: missing field" "$JIWA" knowledge import "$T/bad.jsonl"
expect "knowledge stats counts the pack" 0 "count: 175" "$JIWA" knowledge stats
kill -TERM "$PID"; wait "$PID"; PID=0

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
