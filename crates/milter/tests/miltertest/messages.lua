-- Three messages on one connection, with macros: accepted with our header,
-- rejected with our reply code, discarded.
-- (This miltertest's eom_check has no working MT_SMTPREPLY: the reply
-- texts are checked by the session tests in Rust.)
local name = "messages"
local function check(cond, msg) if not cond then error(msg, 2) end end

local function main()
  local conn = mt.connect("inet:" .. port .. "@127.0.0.1", 20, 0.1)
  check(conn ~= nil, "connect failed")
  check(mt.negotiate(conn, nil, nil, nil) == nil, "negotiate failed")
  check(mt.test_action(conn, SMFIF_ADDHDRS), "ADDHDRS not requested")
  check(mt.test_action(conn, SMFIF_CHGBODY), "CHGBODY not requested")
  check(mt.test_action(conn, SMFIF_QUARANTINE), "QUARANTINE not requested")
  -- With HDR_LEADSPC, miltertest passes "Subject: hello" as " hello", like a real MTA.
  check(mt.test_option(conn, SMFIP_HDR_LEADSPC), "HDR_LEADSPC not requested")
  check(mt.test_option(conn, SMFIP_NR_HDR), "NR_HDR not requested")
  check(not mt.test_option(conn, SMFIP_NR_BODY), "NR_BODY requested")

  mt.macro(conn, SMFIC_CONNECT, "j", "mx.example.com", "{daemon_name}", "smtpd")
  check(mt.conninfo(conn, "client.example.org", "192.0.2.10") == nil, "conninfo")
  check(mt.helo(conn, "client.example.org") == nil, "helo")

  -- Message 1: accepted with our header.
  mt.macro(conn, SMFIC_MAIL, "i", "QID-1", "{auth_authen}", "alice")
  check(mt.mailfrom(conn, "<user@example.org>", "SIZE=100") == nil, "mailfrom")
  check(mt.rcptto(conn, "<a@example.com>") == nil, "rcpt a")
  check(mt.rcptto(conn, "<b@example.com>") == nil, "rcpt b")
  check(mt.header(conn, "From", "user@example.org") == nil, "header From")
  check(mt.header(conn, "Subject", "hello") == nil, "header Subject")
  check(mt.eoh(conn) == nil, "eoh")
  check(mt.bodystring(conn, "Hello, world.\r\n") == nil, "body")
  check(mt.getreply(conn) == SMFIR_CONTINUE, "body reply")
  check(mt.eom(conn) == nil, "eom")
  check(mt.getreply(conn) == SMFIR_ACCEPT, "message 1 not accepted")
  check(mt.eom_check(conn, MT_HDRADD, "X-MXGuard"), "X-MXGuard not added")
  -- HDR_LEADSPC was negotiated: the filter supplies the space after the colon.
  check(mt.eom_check(conn, MT_HDRADD, "X-MXGuard", " scanned; queue=QID-1; rcpts=2"),
        "X-MXGuard value: " .. tostring(mt.getheader(conn, "X-MXGuard", 0)))

  -- Message 2: rejected with our reply code; no modification.
  mt.macro(conn, SMFIC_MAIL, "i", "QID-2")
  check(mt.mailfrom(conn, "<user@example.org>") == nil, "mailfrom 2")
  check(mt.rcptto(conn, "<a@example.com>") == nil, "rcpt 2")
  check(mt.header(conn, "Subject", "bad") == nil, "header 2")
  check(mt.bodystring(conn, "REJECT-ME\r\n") == nil, "body 2")
  check(mt.eom(conn) == nil, "eom 2")
  check(mt.getreply(conn) == SMFIR_REPLYCODE, "message 2 not answered with a reply code")
  check(not mt.eom_check(conn, MT_HDRADD), "a header was added to a rejected message")

  -- Message 3: discarded.
  mt.macro(conn, SMFIC_MAIL, "i", "QID-3")
  check(mt.mailfrom(conn, "<user@example.org>") == nil, "mailfrom 3")
  check(mt.bodystring(conn, "DISCARD-ME\r\n") == nil, "body 3")
  check(mt.eom(conn) == nil, "eom 3")
  check(mt.getreply(conn) == SMFIR_DISCARD, "message 3 not discarded")

  mt.disconnect(conn)
end

local ok, err = pcall(main)
if not ok then
  mt.echo("FAIL " .. name .. ": " .. tostring(err))
  error(err)
end
mt.echo("PASS " .. name)
