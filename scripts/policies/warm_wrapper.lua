-- warm_wrapper — seed option 2: the secondary model writes a warm opening
-- and closing, the main model writes the answer, the client gets
-- opening + answer + closing. If the secondary model is slow (past
-- wrap_timeout_ms), fails, or answers in the wrong shape, the plain answer
-- goes out unchanged: the wrapper can only add warmth, never lose the
-- answer.
--
-- The opening is asked first, under a short deadline, because it must reach
-- the client before the streamed answer.
-- vars: main_model ("claude"), secondary_model ("llama"), persona (""),
-- wrap_timeout_ms (1500).

local WRAP_PROMPT = table.concat({
  "You add warmth to an assistant's answer for a client of an Indonesian",
  "business-services agency. Reply with exactly two lines, in the user's",
  "language, no facts, no numbers, no advice:",
  "OPENING: <one warm sentence acknowledging the question>",
  "CLOSING: <one warm sentence offering further help>",
}, "\n")

-- "OPENING: ...\nCLOSING: ..." -> opening, closing (or nil)
local function parse_wrap(text)
  if type(text) ~= "string" then return nil end
  local opening = text:match("OPENING:%s*([^\n]+)")
  local closing = text:match("CLOSING:%s*([^\n]+)")
  if not opening or not closing then return nil end
  if #opening > 400 or #closing > 400 then return nil end
  -- a wrapper that brings numbers could contradict the answer
  if opening:find("%d") or closing:find("%d") then return nil end
  return opening, closing
end

function on_chat(req)
  local vars = jiwa.config()
  local main = vars.main_model or "claude"
  local secondary = vars.secondary_model or "llama"

  local wrap, werr = jiwa.ask(secondary, "llm.complete", {
    system = WRAP_PROMPT,
    messages = { { role = "user", content = req.text } },
    max_tokens = 120, stream = false, preset = "SANTAI",
  }, { timeout_ms = vars.wrap_timeout_ms or 1500 })
  local opening, closing = parse_wrap(wrap and wrap.text)
  if not opening then
    jiwa.log("info", "warm wrapper skipped: " ..
             tostring(werr or "the secondary model's reply had the wrong shape"))
  elseif req.stream == true then
    jiwa.stream(opening .. "\n\n")
  end

  local answer, err = jiwa.llm(main, {
    system = vars.persona or "",
    messages = { { role = "user", content = req.text } },
    stream = req.stream == true,
  }, { fallback = { secondary } })
  if not answer then
    error("no model answered: " .. tostring(err))
  end
  if not opening then
    return { text = answer.text, route = "warm_wrapper", wrapped = false,
             model = answer.model }
  end
  if req.stream == true then
    jiwa.stream("\n\n" .. closing)
  end
  return { text = opening .. "\n\n" .. answer.text .. "\n\n" .. closing,
           route = "warm_wrapper", wrapped = true, model = answer.model }
end

function self_test()
  local o, c = parse_wrap("OPENING: Halo Pak!\nCLOSING: Semoga membantu.")
  assert(o == "Halo Pak!" and c == "Semoga membantu.")
  assert(parse_wrap("OPENING: it costs 5 juta\nCLOSING: bye") == nil)
  assert(parse_wrap("just some text") == nil)
  return true
end
