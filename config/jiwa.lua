-- jiwad configuration.
--
-- This file is a Lua 5.4 chunk that returns one table. It runs in a sandbox:
-- only `string`, `table`, `math` and the basic functions (pairs, ipairs,
-- tostring, tonumber, type, select, error, assert, next, raw*) exist; there
-- is no io, os, require, load or print, reading an undefined global is an
-- error, and a runaway loop or a huge string stops the load. You may use
-- locals, arithmetic and loops to build the table. `config_dir` holds the
-- absolute directory of this file.
--
-- Every key is checked: an unknown key, a wrong type or an out-of-range
-- value refuses to start the daemon, with a message naming the key.
-- Relative paths are resolved against the directory of this file.

-- The models. Offline (this file), both point at tools/mockllm on
-- 127.0.0.1:8088, which `tools/dev run` starts: it speaks the Anthropic and
-- OpenAI-compatible protocols with canned, clearly-marked replies. For the
-- real endpoints use config/production.lua (keys come from environment
-- variables named there, never from this file).
-- The repository root: paths inside plugin settings (policy file, seed
-- files) are absolute, so jiwad may run from any directory. `config_dir`
-- is the directory of this file, given by jiwad.
local root = config_dir .. "/.."
local mock = "http://127.0.0.1:8088"
local persona = "You are Jiwa, the assistant of an Indonesian business-"
  .. "services agency (visas, KITAS, PT PMA companies, taxes, property in "
  .. "Bali). Answer in the user's language, warmly and precisely."

-- The routing policy, shared by both routers.
local router = {
  file = root .. "/scripts/policies/hybrid.lua",
  fallback_actor = "claude",            -- the plain route when a script fails
  fallback_type = "llm.complete",
  -- (the persona is set on the providers, which put it first in every
  -- system prompt: not again here)
  vars = { main_model = "claude", secondary_model = "llama",
           rag_k = 3, lookup_timeout_ms = 50 },
}

local function routers_and_plugins()
  return {
    { name = "router0", plugin = "policy", worker = 0, config = router },
    { name = "router1", plugin = "policy", worker = 1, config = router },
    -- main model: Claude over the Anthropic Messages API (here: mockllm)
    { name = "claude", plugin = "anthropic",
      config = { endpoint = mock, model = "claude-sonnet-4-5",
                 api_key_env = "ANTHROPIC_API_KEY", persona = persona } },
    -- secondary model: a fine-tuned Llama on an OpenAI-compatible server
    -- (RunPod / vLLM / Ollama; here: mockllm)
    { name = "llama", plugin = "openai",
      config = { endpoint = mock .. "/v1", model = "jiwa-llama-8b",
                 api_key_env = "RUNPOD_API_KEY", persona = persona,
                 preset = "SANTAI" } },
    -- golden answers for frequent questions (examples seeded at first start)
    { name = "golden_cache", plugin = "golden_cache",
      config = { seed_files = { root .. "/config/knowledge/golden_examples.jsonl" } } },
    -- cultural insights, retrieved as context (starter pack seeded)
    { name = "cultural_rag", plugin = "cultural_rag",
      config = { seed_files = { root .. "/config/knowledge/insights_en.jsonl",
                                root .. "/config/knowledge/insights_id.jsonl",
                                root .. "/config/knowledge/insights_it.jsonl" } } },
    -- `jiwa knowledge import|search|stats`
    { name = "knowledge", plugin = "knowledge" },
    -- every chat, logged off the hot path (`jiwa conversations export`)
    { name = "convlog", plugin = "convlog", config = { retention_days = 90 } },
    -- per-user memory: a summary in the model's context (`jiwa memory show`)
    { name = "memory", plugin = "memory" },
    -- after a conversation, the secondary model extracts the user's profile
    { name = "jiwa_enricher", plugin = "jiwa_enricher",
      config = { model = "llama", debounce_ms = 3000 } },
    -- the secondary model answers a sample in the background, compared
    { name = "shadow", plugin = "shadow",
      config = { model = "llama", rate = 0.2, rates = { golden = 0 } } },
    -- the nightly job (scripts/jobs/nightly.lua) and the batch classifier
    { name = "nightly", plugin = "nightly",
      config = { schedule = "0 2 * * *",
                 script = root .. "/scripts/jobs/nightly.lua" } },
    { name = "classifier", plugin = "classifier" },
  }
end

return {
  -- Worker event loops (threads running actors). 0 = one per CPU core.
  -- Range 0..1024. Two here, with one policy router pinned to each (see
  -- `chat` and `actors` below).
  workers = 2,

  -- Directory holding the compiled plugins (<plugin>.so). Must exist:
  -- build the plugins first (cmake --build build).
  plugin_dir = "../build/plugins",

  -- Directory for runtime files: copies of loaded plugins, sockets.
  -- Created by the daemon if missing.
  state_dir = "../build/state",

  log = {
    -- Least severe level written: "error" | "warn" | "info" | "debug".
    level = "info",
    -- "text" for humans, "json" (one object per line) for log shippers.
    format = "text",
  },

  runtime = {
    -- Default deadline of an ask, in ms, when the asker gives none.
    -- Range 1..3600000.
    ask_timeout_ms = 30000,
    -- Default bound of each actor's mailbox; a full mailbox refuses new
    -- messages (JIWA_EBUSY). Range 1..100000000.
    mailbox_max = 10000,
    -- Restart delay after a crash: starts at the min and doubles up to the
    -- max. Ranges 0..3600000 and 0..86400000; max must be >= min.
    restart_backoff_min_ms = 100,
    restart_backoff_max_ms = 30000,
    -- Restarts in a row before an actor is given up on. 0 = never give up.
    restart_max = 0,
    -- How long a plugin version replaced by a reload may finish its
    -- in-flight work, in ms. Range 0..3600000.
    drain_timeout_ms = 30000,
    -- Reload a plugin when its .so in plugin_dir changes.
    watch_plugins = false,
  },

  -- The local socket API (`jiwa` CLI, applications). The socket lives in a
  -- private directory (mode 0700, owned by the daemon's user); only the
  -- daemon's own uid and `allow_uids` may connect.
  socket = {
    -- Default: <state_dir>/jiwad.sock. Relative to this file.
    -- path = "../build/state/jiwad.sock",
    -- Clients connected at once; more are refused (EBUSY). 1..100000.
    max_connections = 1024,
    -- Largest frame payload in bytes, refused right after its header.
    max_frame = 4194304,
    -- A frame started must be complete within this time (slow senders).
    idle_timeout_ms = 10000,
    -- Reply bytes queued for a client before reading from it pauses.
    out_queue_max = 1048576,
    -- Deadline of a request routed to an actor (chat).
    request_timeout_ms = 120000,
    -- Other uids allowed to connect, e.g. { 1001 }.
    allow_uids = {},
  },

  -- Where socket `chat` requests go: an actor (or several, separated by
  -- commas, served round-robin) and the message type they are sent as.
  -- Here: the Lua policy routers, one per worker, each with its own state.
  chat = { actor = "router0,router1", type = "chat" },

  -- The embedded LMDB store: plugin key-value data, vector collections,
  -- golden answers, memory, logs. One writer thread commits in groups.
  store = {
    -- Store directory, created 0700. Default: <state_dir>/store.
    -- Relative to this file.
    -- path = "../build/state/store",
    -- Initial memory map size in bytes; it doubles when full, up to
    -- map_max (writes fail beyond it: raise map_max or delete data).
    -- Ranges 65536..2^46; map_max must be >= map_size.
    map_size = 64 * 1024 * 1024,
    map_max = 64 * 1024 * 1024 * 1024,
    -- "durable": fsync every commit (a write acknowledged is on disk).
    -- "fast": no fsync; a crash of jiwad loses nothing, a power cut may
    -- lose the last commits.
    durability = "durable",
    -- Vector collections opened at start (plugins reach them by name).
    -- Each entry:
    --   name             1-63 characters of a-z 0-9 _ - (required)
    --   embedder         what makes the vectors from texts: "hash" (the
    --                    built-in lexical embedder; no model, no network)
    --                    or "http" (an OpenAI-compatible /v1/embeddings
    --                    server: Ollama, llama.cpp, vLLM, TEI, OpenAI)
    --                    (default "hash")
    --   dim              vector dimension, 8..65536 (default 512; required
    --                    with "http": the model's vector size)
    --   m, ef_construction, ef_search
    --                    HNSW index parameters, used when the collection
    --                    is first created (defaults 16, 200, 64)
    --   With embedder = "http" only:
    --   url              the full endpoint URL (required)
    --   model            the model name the server knows (required)
    --   api_key_env      NAME of the environment variable holding the API
    --                    key, sent as a Bearer token; the key is read from
    --                    the environment only, never written here (leave
    --                    out for servers without keys)
    --   batch            texts per request, 1..2048 (default 64)
    --   timeout_ms       time allowed for one request, 100..600000
    --                    (default 30000); 408/429/5xx are retried up to 3
    --                    times on top
    --   e.g. { name = "semantic", embedder = "http", dim = 1024,
    --          url = "http://127.0.0.1:11434/v1/embeddings",
    --          model = "bge-m3" }
    --   Text search on an http collection must not block a loop: plugins
    --   embed the query themselves, then search by vector.
    -- A collection remembers the embedder and dimension that built it; a
    -- config that disagrees is refused at start (fix it here, or re-import
    -- the collection with --rebuild).
    collections = {
      { name = "cultural", embedder = "hash", dim = 512 },
      { name = "golden", embedder = "hash", dim = 512 },
    },
  },

  -- The nightly worker (plugins/nightly README; the job itself is
  -- scripts/jobs/nightly.lua) runs at 02:00 UTC; `alert_webhook` in its
  -- config POSTs a failed run's summary. On demand:
  -- `jiwa job run nightly --days 7 --max-golden 50 --regenerate-cultural`,
  -- `jiwa job runs`, `jiwa clusters show`, `jiwa classify FILE.jsonl`.

  -- Plugin instances. Each entry:
  --   name        unique actor name, 1-63 characters of a-z 0-9 _ -
  --               (required)
  --   plugin      plugin to load: <plugin_dir>/<plugin>.so (required)
  --   worker      worker loop index to pin the actor to; -1 = round robin
  --               (default -1)
  --   mailbox_max mailbox bound; 0 = runtime.mailbox_max (default 0)
  --   config      the plugin's own settings, checked against its schema
  --               when it loads (`jiwad --plugin-help <plugin>` lists them)
  actors = routers_and_plugins(),
}
