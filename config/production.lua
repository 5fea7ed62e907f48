-- jiwad with the real providers: Claude over the Anthropic API (main model)
-- and the fine-tuned Llama on RunPod's OpenAI-compatible route (secondary).
-- Every key is documented in config/jiwa.lua (the offline default, which
-- points both models at tools/mockllm). `tools/dev run` uses this file when
-- ANTHROPIC_API_KEY is set.
--
-- Keys are read from the environment variables named here, never from this
-- file: export ANTHROPIC_API_KEY=... and RUNPOD_API_KEY=...
-- Set your RunPod endpoint id below.
local root = config_dir .. "/.."  -- the repository root (paths below)
local runpod_endpoint_id = "YOUR_ENDPOINT_ID"

local persona = "You are Jiwa, the assistant of an Indonesian business-"
  .. "services agency (visas, KITAS, PT PMA companies, taxes, property in "
  .. "Bali). Answer in the user's language, warmly and precisely."

local router = {
  file = root .. "/scripts/policies/hybrid.lua",
  fallback_actor = "claude",
  fallback_type = "llm.complete",
  -- (the persona is set on the providers, which put it first in every
  -- system prompt: not again here)
  vars = { main_model = "claude", secondary_model = "llama",
           rag_k = 3, lookup_timeout_ms = 50 },
}

return {
  workers = 2,
  plugin_dir = "../build/plugins",
  state_dir = "../build/state-production",
  log = { level = "info", format = "json" },
  chat = { actor = "router0,router1", type = "chat" },
  store = {
    collections = {
      { name = "cultural", embedder = "hash", dim = 512 },
      { name = "golden", embedder = "hash", dim = 512 },
    },
  },
  actors = {
    { name = "router0", plugin = "policy", worker = 0, config = router },
    { name = "router1", plugin = "policy", worker = 1, config = router },
    { name = "claude", plugin = "anthropic",
      config = { endpoint = "https://api.anthropic.com",
                 model = "claude-sonnet-4-5",
                 api_key_env = "ANTHROPIC_API_KEY", persona = persona } },
    { name = "llama", plugin = "openai",
      config = { endpoint = "https://api.runpod.ai/v2/" .. runpod_endpoint_id
                            .. "/openai/v1",
                 model = "jiwa-llama-8b", api_key_env = "RUNPOD_API_KEY",
                 persona = persona, preset = "SANTAI" } },
    { name = "golden_cache", plugin = "golden_cache",
      config = { seed_files = { root .. "/config/knowledge/golden_examples.jsonl" } } },
    { name = "cultural_rag", plugin = "cultural_rag",
      config = { seed_files = { root .. "/config/knowledge/insights_en.jsonl",
                                root .. "/config/knowledge/insights_id.jsonl",
                                root .. "/config/knowledge/insights_it.jsonl" } } },
    { name = "knowledge", plugin = "knowledge" },
    { name = "convlog", plugin = "convlog", config = { retention_days = 90 } },
    { name = "memory", plugin = "memory" },
    { name = "jiwa_enricher", plugin = "jiwa_enricher",
      config = { model = "llama", debounce_ms = 3000 } },
    { name = "shadow", plugin = "shadow",
      config = { model = "llama", rate = 0.2, rates = { golden = 0 } } },
    { name = "nightly", plugin = "nightly",
      config = { schedule = "0 2 * * *",
                 script = root .. "/scripts/jobs/nightly.lua" } },
    { name = "classifier", plugin = "classifier" },
  },
}
