-- Test harness: runs an Argo CD health.lua the way Argo CD does, under a real Lua 5.1.
--
-- Usage: lua5.1 run_health.lua path/to/health.lua < object.lua
-- stdin is a Lua chunk `return { ... }` (the test converts each YAML fixture to it, since Lua 5.1
-- has no JSON/YAML reader). The object becomes the global `obj`, as in Argo CD; the script's
-- returned table is validated like Argo CD does and printed as "<status>\n<message>".

local script_path = arg[1]
if script_path == nil then
  io.stderr:write("usage: lua5.1 run_health.lua HEALTH_LUA < OBJECT_LUA\n")
  os.exit(2)
end

local load_obj = assert(loadstring(io.read("*a"), "=object"))
local check = assert(loadfile(script_path))

-- NB: without resource.customizations.useOpenLibs Argo CD opens only the base, table and package
-- libraries (plus a "safe" os), so the check runs without string, math, io and os here too.
local env = { obj = load_obj(), table = table, _VERSION = _VERSION }
for _, name in ipairs({ "assert", "error", "ipairs", "next", "pairs", "pcall", "print", "select",
                        "tonumber", "tostring", "type", "unpack", "xpcall", "rawequal", "rawget",
                        "rawset", "getmetatable", "setmetatable" }) do
  env[name] = _G[name]
end
env._G = env
setfenv(check, env)
local hs = check()

-- Argo CD accepts only these codes (gitops-engine health.HealthStatusCode).
local valid = { Healthy = true, Progressing = true, Degraded = true, Suspended = true,
                Missing = true, Unknown = true }
if type(hs) ~= "table" or not valid[hs.status] then
  io.stderr:write("health.lua returned no valid status: " .. tostring(hs and hs.status) .. "\n")
  os.exit(1)
end
if hs.message ~= nil and type(hs.message) ~= "string" then
  io.stderr:write("health.lua returned a non-string message: " .. type(hs.message) .. "\n")
  os.exit(1)
end
io.write(hs.status, "\n", hs.message or "")
