-- wrk script: PUT one manifest under a new tag on every request (tag writes/s).
--
-- Usage: wrk -s tagput.lua URL -- REPO MANIFEST_FILE MEDIA_TYPE
-- Every request writes a tag never written before ("w<thread>-<n>"), so each one is a real
-- tag creation, not an idempotent repeat. The manifest must reference blobs already in REPO.

local thread_count = 0

function setup(thread)
    thread:set("thread_id", thread_count)
    thread_count = thread_count + 1
end

function init(args)
    repo = args[1]
    local f = assert(io.open(args[2], "rb"))
    body = f:read("*a")
    f:close()
    headers = {["Content-Type"] = args[3]}
    counter = 0
end

function request()
    counter = counter + 1
    local path = "/v2/" .. repo .. "/manifests/w" .. thread_id .. "-" .. counter
    return wrk.format("PUT", path, headers, body)
end
