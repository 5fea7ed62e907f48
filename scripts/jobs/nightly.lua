-- The nightly job (DESIGN.md §10; scripts/jobs/README.md).
--
-- jiwad's `nightly` actor reads this file at every run, in a Lua sandbox
-- (no io, os, require; an instruction and memory budget), and calls
-- plan(req). What plan returns is the run: which stages, over how many
-- days, how many golden answers, which topics and languages for cultural
-- knowledge, which model actors. Edit it freely: a broken script fails the
-- run that reads it (recorded, alerted), never the daemon.
--
-- req = { name, run, trigger ("schedule" | "request"), now_ms,
--         days, max_golden (-1 when the request did not say),
--         regenerate_cultural (true | false) }
-- The request's days / max_golden / regenerate_cultural (jiwa job run
-- nightly --days 7 --max-golden 50 --regenerate-cultural) override what
-- is returned here.

local topics = {
  { name = "malu", category = "emotions",
    hint = "Shame and shyness: how it shows in a chat." },
  { name = "sungkan", category = "emotions" },
  { name = "jam_karet", category = "business_culture",
    hint = "Flexible time: meetings, deadlines and appointments." },
  { name = "musyawarah", category = "business_culture" },
  { name = "thr", category = "business_culture",
    hint = "The religious holiday allowance owed to staff." },
  { name = "banjar", category = "bali",
    hint = "The village council and what it expects of villa owners." },
  { name = "nyepi", category = "bali" },
  { name = "indirect_no", category = "communication",
    hint = "How a 'no' is said without saying no." },
  { name = "family_first", category = "relationships" },
}

function plan(req)
  local weekly = false -- set true to generate cultural knowledge on Sundays only
  local stages = { "clusters", "golden", "cultural" }
  if weekly and req.trigger == "schedule" then
    local day = (req.now_ms // 86400000 + 4) % 7 -- 0 = Sunday
    if day ~= 0 then stages = { "clusters", "golden" } end
  end
  return {
    stages = stages,
    days = 7,                 -- the window of the conversation log
    max_golden = 50,          -- golden answers generated per run, at most
    min_cluster_size = 5,     -- smaller clusters get no golden answer
    paraphrases = 5,          -- cluster members stored as paraphrases
    golden_model = "claude",  -- actor names (config actors[i].name)
    cultural_model = "llama",
    regenerate_cultural = false,
    cultural = {
      topics = topics,
      langs = { "en", "id", "it" },
      per_prompt = 5,         -- insights asked for per topic x language
    },
  }
end
