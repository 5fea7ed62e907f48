-- team_only — seed option 4: team members get the secondary (fine-tuned)
-- model, everyone else the main model. A user is a team member when the
-- request says so (attrs.team == true, set by the application) or when the
-- user id is listed in vars.team_users. Either model falls back to the
-- other when it fails before streaming anything.
-- vars: main_model ("claude"), secondary_model ("llama"), persona (""),
-- team_users ({}).

local function is_team(req, vars)
  if type(req.attrs) == "table" and req.attrs.team == true then
    return true
  end
  if type(vars.team_users) == "table" and type(req.user) == "string" then
    for _, u in ipairs(vars.team_users) do
      if u == req.user then return true end
    end
  end
  return false
end

function on_chat(req)
  local vars = jiwa.config()
  local main = vars.main_model or "claude"
  local secondary = vars.secondary_model or "llama"
  local team = is_team(req, vars)
  local first, second = main, secondary
  if team then first, second = secondary, main end

  local answer, err = jiwa.llm(first, {
    system = vars.persona or "",
    messages = { { role = "user", content = req.text } },
    stream = req.stream == true,
  }, { fallback = { second } })
  if not answer then
    error("no model answered: " .. tostring(err))
  end
  return { text = answer.text, route = team and "team" or "main",
           model = answer.model }
end

function self_test()
  assert(is_team({ attrs = { team = true } }, {}))
  assert(is_team({ user = "made" }, { team_users = { "ketut", "made" } }))
  assert(not is_team({ user = "guest" }, { team_users = { "made" } }))
  return true
end
