-- A handler deciding at CONNECT and RCPT: a denied client, a refused
-- recipient, then a normal message with the remaining recipient.
local name = "hooks"
local function check(cond, msg) if not cond then error(msg, 2) end end
local addr = "inet:" .. port .. "@127.0.0.1"

local function main()
  local conn = mt.connect(addr, 20, 0.1)
  check(conn ~= nil, "connect 1")
  check(mt.negotiate(conn, nil, nil, nil) == nil, "negotiate 1")
  check(not mt.test_option(conn, SMFIP_NR_CONN), "NR_CONN asked for by a connect hook")
  check(not mt.test_option(conn, SMFIP_NR_RCPT), "NR_RCPT asked for by a rcpt hook")
  check(mt.test_option(conn, SMFIP_NR_HELO), "NR_HELO not asked for")
  check(mt.conninfo(conn, "bad.example", "192.0.2.66") == nil, "conninfo 1")
  check(mt.getreply(conn) == SMFIR_REPLYCODE, "denied client not refused")
  mt.disconnect(conn)

  conn = mt.connect(addr, 20, 0.1)
  check(conn ~= nil, "connect 2")
  check(mt.conninfo(conn, "good.example", "192.0.2.10") == nil, "conninfo 2")
  check(mt.getreply(conn) == SMFIR_CONTINUE, "good client refused")
  check(mt.mailfrom(conn, "<user@example.org>") == nil, "mailfrom")
  check(mt.rcptto(conn, "<blocked@example.com>") == nil, "rcpt blocked")
  check(mt.getreply(conn) == SMFIR_REPLYCODE, "blocked recipient not refused")
  check(mt.rcptto(conn, "<ok@example.com>") == nil, "rcpt ok")
  check(mt.getreply(conn) == SMFIR_CONTINUE, "good recipient refused")
  check(mt.eom(conn) == nil, "eom")
  check(mt.getreply(conn) == SMFIR_ACCEPT, "message not accepted")
  check(mt.eom_check(conn, MT_HDRADD, "X-MXGuard", " scanned; queue=none; rcpts=1"),
        "X-MXGuard: " .. tostring(mt.getheader(conn, "X-MXGuard", 0)))
  mt.disconnect(conn)
end

local ok, err = pcall(main)
if not ok then
  mt.echo("FAIL " .. name .. ": " .. tostring(err))
  error(err)
end
mt.echo("PASS " .. name)
