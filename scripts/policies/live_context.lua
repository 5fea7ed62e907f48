-- live_context — seed option 1 without RAG: the secondary model writes the
-- cultural context live, in parallel with the memory lookup, under a
-- deadline (context_timeout_ms); the main model then answers with whatever
-- context arrived in time. Late or failed context is dropped, never waited
-- for beyond the deadline.
-- vars: main_model ("claude"), secondary_model ("llama"), persona (""),
-- context_timeout_ms (1200).

local CONTEXT_PROMPT = table.concat({
  "In at most three short bullet points, note the Indonesian cultural",
  "context an assistant should keep in mind when answering this message",
  "(feelings such as malu or sungkan, politeness, family, business",
  "customs). No answer to the question itself.",
}, "\n")

function on_chat(req)
  local vars = jiwa.config()
  local main = vars.main_model or "claude"
  local secondary = vars.secondary_model or "llama"
  -- the client may say which language; otherwise it is detected
  local lang = req.lang or (jiwa.detect_language(req.text))
  local deadline = { timeout_ms = vars.context_timeout_ms or 1200 }

  local got = jiwa.all {
    { secondary, "llm.complete",
      { system = CONTEXT_PROMPT, lang = lang, stream = false,
        preset = "SANTAI", max_tokens = 160,
        messages = { { role = "user", content = req.text } } }, deadline },
    { "memory", "memory.get", { user = req.user or "" }, deadline },
  }
  local context = {}
  if type(got[1].text) == "string" and got[1].text ~= "" then
    context[#context + 1] = "Cultural context:\n" .. got[1].text
  end
  if type(got[2].summary) == "string" and got[2].summary ~= "" then
    context[#context + 1] = got[2].summary
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
  return { text = answer.text, route = "live_context", lang = lang,
           context_used = #context, live_context = got[1].text ~= nil,
           model = answer.model }
end

function self_test()
  return type(on_chat) == "function"
end
