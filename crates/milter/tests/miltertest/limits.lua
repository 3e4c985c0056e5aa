-- Size limit (the server runs with max_message_size = 8192), abort in the
-- middle of a body, and the failure policy (error, panic, timeout with
-- progress replies; handler_timeout = 3 s), all on one connection.
local name = "limits"
local function check(cond, msg) if not cond then error(msg, 2) end end

local function envelope(conn, qid)
  mt.macro(conn, SMFIC_MAIL, "i", qid)
  check(mt.mailfrom(conn, "<user@example.org>") == nil, "mailfrom " .. qid)
  check(mt.rcptto(conn, "<a@example.com>") == nil, "rcpt " .. qid)
  check(mt.header(conn, "Subject", qid) == nil, "header " .. qid)
  check(mt.eoh(conn) == nil, "eoh " .. qid)
end

local function main()
  local conn = mt.connect("inet:" .. port .. "@127.0.0.1", 20, 0.1)
  check(conn ~= nil, "connect failed")
  check(mt.negotiate(conn, nil, nil, nil) == nil, "negotiate")
  check(mt.conninfo(conn, "client.example.org", "192.0.2.10") == nil, "conninfo")

  -- Over 8192 bytes: the third 3000-byte chunk is answered with the
  -- size-limit reply, and so is the end of message.
  envelope(conn, "BIG")
  local chunk = string.rep("x", 2998) .. "\r\n"
  check(mt.bodystring(conn, chunk) == nil, "chunk 1")
  check(mt.getreply(conn) == SMFIR_CONTINUE, "chunk 1 reply")
  check(mt.bodystring(conn, chunk) == nil, "chunk 2")
  check(mt.getreply(conn) == SMFIR_CONTINUE, "chunk 2 reply")
  check(mt.bodystring(conn, chunk) == nil, "chunk 3")
  check(mt.getreply(conn) == SMFIR_REPLYCODE, "oversize not refused at chunk 3")
  check(mt.eom(conn) == nil, "eom BIG")
  check(mt.getreply(conn) == SMFIR_REPLYCODE, "oversize not refused at end of message")
  check(not mt.eom_check(conn, MT_HDRADD), "header added to an oversize message")

  -- Abort in the middle of a body, then a new message on the same connection.
  envelope(conn, "ABORTED")
  check(mt.bodystring(conn, "ABORTED part\r\n") == nil, "aborted body")
  check(mt.getreply(conn) == SMFIR_CONTINUE, "aborted body reply")
  check(mt.abort(conn) == nil, "abort")
  envelope(conn, "AFTER-ABORT")
  check(mt.bodystring(conn, "fine\r\n") == nil, "body after abort")
  check(mt.eom(conn) == nil, "eom after abort")
  check(mt.getreply(conn) == SMFIR_ACCEPT, "message after abort not accepted")
  check(mt.eom_check(conn, MT_HDRADD, "X-MXGuard", " scanned; queue=AFTER-ABORT; rcpts=1"),
        "X-MXGuard after abort: " .. tostring(mt.getheader(conn, "X-MXGuard", 0)))

  -- The handler fails: tempfail with our reply code, never an accept.
  for _, marker in ipairs({"HANDLER-ERROR", "HANDLER-PANIC", "HANDLER-SLOW"}) do
    envelope(conn, marker)
    check(mt.bodystring(conn, marker .. "\r\n") == nil, "body " .. marker)
    check(mt.eom(conn) == nil, "eom " .. marker)
    check(mt.getreply(conn) == SMFIR_REPLYCODE, marker .. ": not answered with the tempfail reply")
    check(not mt.eom_check(conn, MT_HDRADD), marker .. ": header added")
  end

  -- Still usable afterwards.
  envelope(conn, "LAST")
  check(mt.eom(conn) == nil, "eom LAST")
  check(mt.getreply(conn) == SMFIR_ACCEPT, "last message not accepted")
  mt.disconnect(conn)
end

local ok, err = pcall(main)
if not ok then
  mt.echo("FAIL " .. name .. ": " .. tostring(err))
  error(err)
end
mt.echo("PASS " .. name)
