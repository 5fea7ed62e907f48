-- jiwad configuration.
--
-- This file is a Lua 5.4 chunk that returns one table. It runs in a sandbox:
-- only `string`, `table`, `math` and the basic functions (pairs, ipairs,
-- tostring, tonumber, type, select, error, assert, next, raw*) exist; there
-- is no io, os, require, load or print, reading an undefined global is an
-- error, and a runaway loop or a huge string stops the load. You may use
-- locals, arithmetic and loops to build the table.
--
-- Every key is checked: an unknown key, a wrong type or an out-of-range
-- value refuses to start the daemon, with a message naming the key.
-- Relative paths are resolved against the directory of this file.

return {
  -- Worker event loops (threads running actors). 0 = one per CPU core.
  -- Range 0..1024.
  workers = 0,

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

  -- Where socket `chat` requests go: an actor and the message type they are
  -- sent as. The Lua routing policy replaces this when it lands.
  chat = { actor = "echo", type = "chat" },

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
    --                    (default "hash")
    --   dim              vector dimension, 8..65536 (default 512)
    --   m, ef_construction, ef_search
    --                    HNSW index parameters, used when the collection
    --                    is first created (defaults 16, 200, 64)
    -- A collection remembers the embedder and dimension that built it; a
    -- config that disagrees is refused at start (fix it here, or re-import
    -- the collection with --rebuild).
    collections = {
      { name = "cultural", embedder = "hash", dim = 512 },
      { name = "golden", embedder = "hash", dim = 512 },
    },
  },

  -- Plugin instances. Each entry:
  --   name        unique actor name, 1-63 characters of a-z 0-9 _ -
  --               (required)
  --   plugin      plugin to load: <plugin_dir>/<plugin>.so (required)
  --   worker      worker loop index to pin the actor to; -1 = round robin
  --               (default -1)
  --   mailbox_max mailbox bound; 0 = runtime.mailbox_max (default 0)
  --   config      the plugin's own settings, checked against its schema
  --               when it loads (`jiwad --plugin-help <plugin>` lists them)
  actors = {
    { name = "echo", plugin = "echo", config = { greeting = "halo" } },
    { name = "hello", plugin = "template" },
  },
}
