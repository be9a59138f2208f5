-- Argo CD health of a ModelLoop Model (resource_customizations/modelloop.dev/Model, or
-- resource.customizations.health.modelloop.dev_Model in argocd-cm).
local hs = {}

local function condition(type_)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local status = obj.status
if status == nil or status.observedGeneration == nil
    or status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe this generation"
  return hs
end

local ready = condition("Ready")
local degraded = condition("Degraded")
local canary = status.canary

if status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = (ready and ready.message) or "The stable version cannot be served"
elseif canary ~= nil and canary.phase == "RollingBack" then
  hs.status = "Degraded"
  hs.message = "Rolling back " .. canary.version .. ": " .. (canary.message or "")
elseif canary ~= nil and (canary.phase == "WaitingForApproval" or canary.phase == "Paused"
    or canary.phase == "WaitingForConfirmation") then
  hs.status = "Suspended"
  hs.message = canary.message or ("Rollout of " .. canary.version .. " waits")
elseif canary ~= nil then
  hs.status = "Progressing"
  hs.message = canary.message
    or ("Rolling out " .. canary.version .. " at " .. tostring(canary.weight or 0) .. "%")
elseif obj.spec.paused then
  hs.status = "Suspended"
  hs.message = "The Model is paused"
elseif status.phase == "Pending" or ready == nil or ready.status ~= "True" then
  hs.status = "Progressing"
  hs.message = (ready and ready.message) or "No version serves yet"
elseif degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = degraded.message
else
  hs.status = "Healthy"
  hs.message = "Serving " .. (status.stableVersion or "")
end
return hs
