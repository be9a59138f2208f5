-- Argo CD health of a ModelLoop ModelVersion (resource_customizations/modelloop.dev/ModelVersion,
-- or resource.customizations.health.modelloop.dev_ModelVersion in argocd-cm).
local hs = {}
local phase = obj.status and obj.status.phase
local reason = obj.status and obj.status.message

local states = {
  Pending = {"Progressing", "Waiting for validation"},
  Validated = {"Healthy", "Validated; waits for a rollout"},
  Canary = {"Progressing", "Rolling out as the canary"},
  Serving = {"Healthy", "Serving production"},
  Retired = {"Healthy", "Retired: replaced by a newer version"},
  Rejected = {"Degraded", "Rejected by the validation gates"},
  RolledBack = {"Degraded", "Rolled back by the canary analysis"},
}

local state = states[phase]
if state == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator"
else
  hs.status = state[1]
  hs.message = reason or state[2]
end
return hs
