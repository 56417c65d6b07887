-- Argo CD health of a Hygie object (HostingProfile, Dataset or Workspace), read from what the
-- operator writes: observedGeneration, the kstatus conditions (Stalled, Reconciling), the Ready
-- and Compliant conditions, and the phase.
local hs = {status = "Progressing", message = "waiting for Hygie to reconcile"}
if obj.status == nil then
  return hs
end
if obj.status.observedGeneration ~= nil and obj.metadata.generation ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "Hygie has not reconciled the latest change yet"
  return hs
end
local ready = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if (condition.type == "Stalled" and condition.status == "True")
        or (condition.type == "Compliant" and condition.status == "False") then
      hs.status = "Degraded"
      hs.message = condition.message
      return hs
    end
    if condition.type == "Ready" then
      ready = condition
    end
  end
end
local phase = obj.status.phase
local message = phase
if ready ~= nil then
  message = ready.message
end
if phase == "Suspended" or phase == "Idle" then
  hs.status = "Suspended"
  hs.message = message
  return hs
end
if phase == "Expired" or phase == "Failed" or phase == "Blocked"
    or (ready ~= nil and ready.status == "False" and ready.reason == "RulesViolated") then
  hs.status = "Degraded"
  hs.message = message
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message
  return hs
end
if message ~= nil then
  hs.message = message
end
return hs
