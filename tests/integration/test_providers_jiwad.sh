#!/usr/bin/env bash
# The provider plugins inside a real jiwad, end to end through the socket
# and the `jiwa` CLI: the hybrid policy with claude = anthropic and
# llama = openai, both on tools/mockllm; fallback when claude fails
# (529, a reset before the first delta, a refused key); a clean error when
# both fail; and a canary API key, exported to jiwad at log level debug,
# that must appear in no log line, no stats output, no reply and no file of
# the state dir (store included).
# Usage: test_providers_jiwad.sh JIWAD JIWA MOCKLLM PLUGIN_DIR SRC_DIR
set -uo pipefail
JIWAD="$1" JIWA="$2" MOCK="$3" PLUGINS="$4" SRC="$5"
T="$(mktemp -d "${TMPDIR:-/tmp}/jiwa-provjiwad-XXXXXX")"
PID=0 MPID=0 pass=0 fail=0
cleanup() {
  [ "$PID" -gt 0 ] && kill "$PID" 2>/dev/null
  [ "$MPID" -gt 0 ] && kill "$MPID" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() { fail=$((fail + 1)); echo "FAIL - $1"; [ -n "${2:-}" ] && sed 's/^/       /' "$2" | tail -30; }

CANARY="sk-canary-5d1e0c3b9a7f2e4d6c8b"
export JIWA_PROV_CANARY="$CANARY"

# mockllm with per-question faults (matched on the user's text)
cat >"$T/script.jsonl" <<'JSONL'
{"route": "anthropic", "match": "F529", "fault": "status=529"}
{"route": "anthropic", "match": "FRESET", "fault": "reset_after=0"}
{"route": "anthropic", "match": "F401", "fault": "status=401"}
{"route": "*", "match": "FBOTH", "fault": "status=500"}
JSONL
"$MOCK" --port 0 --port-file "$T/port" --script "$T/script.jsonl" --quiet 2>"$T/mock.log" &
MPID=$!
for _ in $(seq 1 300); do [ -s "$T/port" ] && break; sleep 0.1; done
PORT="$(cat "$T/port" 2>/dev/null)"
if [ -n "$PORT" ]; then ok "mockllm listens"; else bad "mockllm start" "$T/mock.log"; exit 1; fi

cat >"$T/jiwa.lua" <<CONF
return {
  workers = 2, plugin_dir = "$PLUGINS", state_dir = "$T/state",
  log = { level = "debug" },
  socket = { path = "$T/sock/jiwad.sock" },
  chat = { actor = "router", type = "chat" },
  actors = {
    { name = "router", plugin = "policy", config = {
        file = "$SRC/scripts/policies/hybrid.lua", fallback_actor = "llama",
        ask_timeout_ms = 5000,
        vars = { main_model = "claude", secondary_model = "llama",
                 persona = "Kamu Jiwa." } } },
    { name = "claude", plugin = "anthropic", config = {
        endpoint = "http://127.0.0.1:$PORT", model = "claude-x",
        api_key_env = "JIWA_PROV_CANARY", retries = 2, backoff_base_ms = 10 } },
    { name = "llama", plugin = "openai", config = {
        endpoint = "http://127.0.0.1:$PORT/v1", model = "llama-x",
        api_key_env = "JIWA_PROV_CANARY", retries = 2, backoff_base_ms = 10 } },
  },
}
CONF
: >"$T/jiwad.log"
"$JIWAD" -c "$T/jiwa.lua" >>"$T/jiwad.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do grep -qF "serving" "$T/jiwad.log" && break; sleep 0.1; done
if grep -qF "serving" "$T/jiwad.log"; then ok "jiwad starts with the providers"; else bad "jiwad start" "$T/jiwad.log"; exit 1; fi

J=("$JIWA" --socket "$T/sock/jiwad.sock" --timeout 20000)
chat() { # name needle text
  local name="$1" needle="$2"; shift 2
  "${J[@]}" chat "$@" --lang id --stream >"$T/out" 2>&1; local rc=$?
  cat "$T/out" >>"$T/replies"
  if [ "$rc" = 0 ] && grep -qF -- "$needle" "$T/out"; then ok "$name"
  else bad "$name (exit $rc, looking for '$needle')" "$T/out"; fi
}
chat "claude answers, streamed" "[mock claude-x] You asked: \"Berapa lama KITAS?\"" "Berapa lama KITAS?"
chat "529: falls back to llama" "[mock llama-x]" "F529 Berapa lama KITAS?"
chat "reset before the first delta: falls back" "[mock llama-x]" "FRESET Berapa lama KITAS?"
chat "key refused (401): falls back" "[mock llama-x]" "F401 Berapa lama KITAS?"

"${J[@]}" chat "FBOTH Berapa lama KITAS?" --lang id >"$T/out" 2>&1; rc=$?
cat "$T/out" >>"$T/replies"
if [ "$rc" = 1 ] && grep -qF "upstream error (500)" "$T/out"; then ok "both fail: one clear error"
else bad "both fail (exit $rc)" "$T/out"; fi

"${J[@]}" stats --json >"$T/stats" 2>&1
if grep -qF "llm_requests" "$T/stats"; then ok "stats count provider calls"; else bad "stats" "$T/stats"; fi
"${J[@]}" plugins >>"$T/stats" 2>&1
kill -USR1 "$PID"
sleep 0.5
kill -TERM "$PID"; wait "$PID"; rc=$?; PID=0
if [ "$rc" = 0 ]; then ok "jiwad stops cleanly"; else bad "jiwad stop (exit $rc)" "$T/jiwad.log"; fi

# the debug trace ran (headers were logged, redacted) ...
if grep -qF "[redacted]" "$T/jiwad.log"; then ok "debug log redacts the key headers"
else bad "no redacted header in the debug log" "$T/jiwad.log"; fi
# ... and the canary is nowhere
if grep -rqF -- "$CANARY" "$T/jiwad.log" "$T/stats" "$T/replies" "$T/state" "$T/mock.log" 2>/dev/null; then
  bad "the canary key leaked: $(grep -rlF -- "$CANARY" "$T/jiwad.log" "$T/stats" "$T/replies" "$T/state" "$T/mock.log" 2>/dev/null | tr '\n' ' ')"
else ok "the canary key appears in no log, stats, reply or state file"; fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
