-- hybrid — the default routing policy (seed options 1 + 5, DESIGN.md §1).
--
-- golden cache → cultural RAG + user memory (in parallel) → main model with
-- that context, streamed to the user (falls back to the secondary model)
-- → JIWA enricher and shadow comparison in the background (tells: never
-- waited on). A golden hit answers at once, without any model call.
--
-- Actors it talks to (absent or failing ones are skipped, never fatal):
--   golden_cache  golden.lookup {query, lang}           -> {hit, answer, score, id}
--   cultural_rag  rag.query     {query, lang, k}        -> {context, insights}
--   memory        memory.get    {user}                  -> {summary}
--   main/secondary llm.complete {system, context, messages, stream}
--                                  deltas {text}, final {text, model}
--   jiwa_enricher enrich.conversation (tell)
--   shadow        shadow.compare      (tell)
--   convlog       conversation.record (tell): every chat, for the log and
--                 the nightly clustering
-- vars (jiwa.config()): main_model ("claude"), secondary_model ("llama"),
-- persona (""), rag_k (3), lookup_timeout_ms (50), golden_greeting (none).
--
-- personalize(hit, req, vars): the golden answer as the user gets it. The
-- golden reply carries the entry's lang, tags and example flag
-- (plugins/golden_cache/README.md). With vars.golden_greeting =
-- { en = "Hi %s! ", id = "Halo %s! ", it = "Ciao %s! " } and a request
-- that names the user (req.name), the answer starts with a greeting in the
-- entry's language; otherwise it is served as stored.
local function personalize(hit, req, vars)
  local greet = type(vars.golden_greeting) == "table"
      and vars.golden_greeting[hit.lang or ""]
  if type(greet) == "string" and type(req.name) == "string"
      and req.name ~= "" then
    return string.format(greet, req.name) .. hit.answer
  end
  return hit.answer
end

-- One record of the conversation log (plugins/convlog): what was asked,
-- what was answered, and how.
local function record(req, lang, t0, r)
  r.user = req.user or ""
  r.session = req.session or ""
  r.lang = lang
  r.text = req.text
  r.ms = jiwa.now() - t0
  jiwa.tell("convlog", "conversation.record", r)
end

function on_chat(req)
  local t0 = jiwa.now()
  local vars = jiwa.config()
  -- the client may say which language; otherwise it is detected
  local lang = req.lang or (jiwa.detect_language(req.text))
  local fast = { timeout_ms = vars.lookup_timeout_ms or 50 }
  local main = vars.main_model or "claude"
  local secondary = vars.secondary_model or "llama"

  local hit = jiwa.ask("golden_cache", "golden.lookup",
                       { query = req.text, lang = lang }, fast)
  if hit and hit.hit and type(hit.answer) == "string" then
    local text = personalize(hit, req, vars)
    record(req, lang, t0, { answer = text, route = "golden",
                            golden_id = hit.id, golden_score = hit.score })
    return { text = text, route = "golden",
             lang = lang, golden_id = hit.id, golden_score = hit.score }
  end

  local found = jiwa.all {
    { "cultural_rag", "rag.query",
      { query = req.text, lang = lang, k = vars.rag_k or 3 }, fast },
    { "memory", "memory.get", { user = req.user or "" }, fast },
  }
  local context = {}
  if type(found[1].context) == "string" and found[1].context ~= "" then
    context[#context + 1] = found[1].context
  end
  if type(found[2].summary) == "string" and found[2].summary ~= "" then
    context[#context + 1] = found[2].summary
  end

  local answer, err = jiwa.llm(main, {
    system = vars.persona or "",
    context = table.concat(context, "\n"),
    lang = lang,
    messages = { { role = "user", content = req.text } },
    stream = req.stream == true,
  }, { fallback = { secondary } })
  if not answer then
    error("no model answered: " .. tostring(err))
  end

  jiwa.tell("jiwa_enricher", "enrich.conversation",
            { user = req.user or "", session = req.session or "",
              lang = lang, text = req.text, answer = answer.text })
  jiwa.tell("shadow", "shadow.compare",
            { user = req.user or "", text = req.text, lang = lang,
              context = table.concat(context, "\n"),
              primary = answer.text, primary_model = answer.model,
              primary_ms = jiwa.now() - t0, route = "hybrid" })
  local ids = {}
  for i, ins in ipairs(type(found[1].insights) == "table"
                       and found[1].insights or {}) do
    ids[i] = ins.id
  end
  record(req, lang, t0, { answer = answer.text, route = "hybrid",
                          model = answer.model, insight_ids = ids,
                          memory_used = found[2].summary ~= nil
                            and found[2].summary ~= "" })
  return { text = answer.text, route = "hybrid", lang = lang,
           context_used = #context, model = answer.model,
           insights = found[1].insights }
end

function self_test()
  return type(on_chat) == "function"
end
