-- hybrid — the default routing policy (seed options 1 + 5, DESIGN.md §1).
--
-- golden cache → cultural RAG + user memory (in parallel) → main model with
-- that context, streamed to the user (falls back to the secondary model)
-- → JIWA enricher and shadow comparison in the background (tells: never
-- waited on). A golden hit answers at once, without any model call.
--
-- Actors it talks to (absent ones are skipped, not fatal):
--   golden_cache  golden.lookup {query, lang}         -> {hit, answer}
--   cultural_rag  rag.query     {query, lang, k}      -> {context, insights}
--   memory        memory.get    {user}                -> {summary}
--   claude/llama  llm.complete  {system, context, messages, stream}
--                                  deltas {text}, final {text, model}
--   jiwa_enricher enrich.conversation (tell)
--   shadow        shadow.compare      (tell)

local function lang_of(req)
  if type(req.lang) == "string" and req.lang ~= "" then
    return req.lang
  end
  local ok, lang = pcall(jiwa.detect_language, req.text)
  if ok then
    return lang
  end
  return "unknown"
end

function on_chat(req)
  local lang = lang_of(req)
  local vars = jiwa.config()
  local main = vars.main_model or "claude"
  local secondary = vars.secondary_model or "llama"

  local hit = jiwa.ask("golden_cache", "golden.lookup",
                       { query = req.text, lang = lang }, { timeout_ms = 50 })
  if hit and hit.hit then
    return { text = hit.answer, route = "golden", lang = lang }
  end

  local found = jiwa.all {
    { "cultural_rag", "rag.query", { query = req.text, lang = lang, k = 3 } },
    { "memory", "memory.get", { user = req.user or "" } },
  }
  local context = {}
  if found[1].context then context[#context + 1] = found[1].context end
  if found[2].summary then context[#context + 1] = found[2].summary end

  local answer, err = jiwa.llm(main, {
    system = vars.persona or "",
    context = table.concat(context, "\n"),
    messages = { { role = "user", content = req.text } },
    stream = req.stream == true,
  }, { fallback = { secondary } })
  if not answer then
    error("no model answered: " .. tostring(err))
  end

  jiwa.tell("jiwa_enricher", "enrich.conversation",
            { user = req.user or "", session = req.session or "",
              text = req.text, answer = answer.text })
  jiwa.tell("shadow", "shadow.compare",
            { text = req.text, primary = answer.text })
  return { text = answer.text, route = "hybrid", lang = lang,
           context_used = #context, model = answer.model }
end

function self_test()
  return type(on_chat) == "function"
end
