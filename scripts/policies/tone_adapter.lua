-- tone_adapter — seed option 3: the main model answers, the secondary model
-- rewrites the answer warmer, and a fact check (jiwa.fact_check) rejects a
-- rewrite that changed a number, an amount, a percentage, a duration, a
-- document name or a negation. A rejected, late or failed rewrite leaves the
-- original answer. The answer is not streamed: the rewrite needs it whole.
-- vars: main_model ("claude"), secondary_model ("llama"), persona (""),
-- rewrite_timeout_ms (4000).

local REWRITE_PROMPT = table.concat({
  "Rewrite the assistant's answer below so it sounds warm and personal for",
  "a client of an Indonesian business-services agency, in the same",
  "language. Keep every fact exactly: numbers, amounts, percentages,",
  "durations, document names and every 'not'. Reply with the rewritten",
  "answer only.",
}, "\n")

function on_chat(req)
  local vars = jiwa.config()
  local main = vars.main_model or "claude"
  local secondary = vars.secondary_model or "llama"

  local answer, err = jiwa.ask(main, "llm.complete", {
    system = vars.persona or "",
    messages = { { role = "user", content = req.text } },
    stream = false,
  })
  if not answer then
    error("the main model failed: " .. tostring(err))
  end

  local rewrite, rerr = jiwa.ask(secondary, "llm.complete", {
    system = REWRITE_PROMPT,
    messages = { { role = "user", content = answer.text } },
    stream = false, preset = "SANTAI",
  }, { timeout_ms = vars.rewrite_timeout_ms or 4000 })
  if not rewrite or type(rewrite.text) ~= "string" or rewrite.text == "" then
    jiwa.log("info", "tone adapter: no rewrite (" .. tostring(rerr) .. ")")
    return { text = answer.text, route = "tone_adapter",
             rewrite = "unavailable", model = answer.model }
  end
  local kept, why = jiwa.fact_check(answer.text, rewrite.text)
  if not kept then
    jiwa.log("warn", "tone adapter: rewrite rejected: " .. why)
    return { text = answer.text, route = "tone_adapter",
             rewrite = "rejected: " .. why, model = answer.model }
  end
  return { text = rewrite.text, route = "tone_adapter", rewrite = "accepted",
           model = answer.model, rewritten_by = rewrite.model }
end

function self_test()
  assert(jiwa.fact_check("KITAS takes 30 days.", "Your KITAS takes 30 days!"))
  assert(not jiwa.fact_check("KITAS takes 30 days.", "KITAS takes 30 months."))
  return true
end
