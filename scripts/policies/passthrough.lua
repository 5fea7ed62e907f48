-- passthrough — the plain route as a policy: the main model answers, with no
-- enrichment. Useful as a baseline (bench) and as a template.
function on_chat(req)
  local model = jiwa.config().main_model or "claude"
  local answer, err = jiwa.llm(model, {
    messages = { { role = "user", content = req.text } },
    stream = req.stream == true,
  })
  if not answer then
    error("main model failed: " .. tostring(err))
  end
  return { text = answer.text, route = "passthrough" }
end
