-- Argo CD health check for embeddings.ai/v1alpha1 EmbeddingModel.
--
-- Install as argocd-cm key resource.customizations.health.embeddings.ai_EmbeddingModel
-- (argocd-cm-patch.yaml next to this file embeds it verbatim; a unit test keeps them equal).
-- The operator writes kstatus conditions: Ready is the summary, Reconciling and Stalled are
-- abnormal-true. They are trusted only once they describe the current metadata.generation, so a
-- Ready=True left over from the previous spec never reports Healthy in the middle of a rollout.
-- NB: Lua 5.1 only (Argo CD runs gopher-lua); `obj` is the live object, set as a global.
-- No deletion branch: Argo CD answers "Progressing / Pending deletion" for any object with a
-- deletionTimestamp before it runs a health script (gitops-engine pkg/health), so it would never run.

local hs = {}
local meta = obj.metadata or {}
local status = obj.status
local generation = meta.generation

local function condition(type_)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function message_of(c)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return nil
end

local ready = condition("Ready")
local reconciling = condition("Reconciling")
local stalled = condition("Stalled")

-- Generation check: status (and each of our conditions) must describe the current spec.
local waiting = "Waiting for the operator to report status"
if generation ~= nil then
  waiting = "Waiting for the operator to observe generation " .. generation
end
if status == nil or (generation ~= nil and
    (status.observedGeneration == nil or status.observedGeneration < generation)) then
  hs.status = "Progressing"
  hs.message = waiting
  return hs
end
if generation ~= nil then
  -- Only our own condition types: conditions other tools add are not ours to judge.
  local ours = { Ready = true, Reconciling = true, Stalled = true }
  for _, c in ipairs(status.conditions or {}) do
    if ours[c.type] and c.observedGeneration ~= nil and c.observedGeneration < generation then
      hs.status = "Progressing"
      hs.message = waiting
      return hs
    end
  end
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = message_of(stalled) or stalled.reason or "Stalled"
  return hs
end

local spec = obj.spec or {}
local ready_true = ready ~= nil and ready.status == "True"
if spec.suspend == true and (not ready_true or status.phase == "Suspended") then
  hs.status = "Suspended"
  hs.message = message_of(ready) or "Suspended by spec.suspend"
  return hs
end

-- kstatus: Reconciling=True means "not current yet" even while Ready=True (e.g. a rollout that
-- keeps the old deployment serving), so a sync wave must not move on.
local reconciling_true = reconciling ~= nil and reconciling.status == "True"
if ready_true and not reconciling_true then
  hs.status = "Healthy"
  if status.endpoint ~= nil and status.endpoint ~= "" then
    hs.message = status.endpoint
  else
    hs.message = message_of(ready) or "Ready"
  end
  return hs
end

-- A Failed phase without Stalled=True should not happen; never let it read as Progressing.
if status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = message_of(ready) or "Failed"
  return hs
end

hs.status = "Progressing"
if reconciling_true then
  hs.message = message_of(reconciling) or message_of(ready)
else
  hs.message = message_of(ready) or message_of(reconciling)
end
if hs.message == nil then
  hs.message = "Waiting for Ready (phase " .. (status.phase or "unset") .. ")"
end
return hs
