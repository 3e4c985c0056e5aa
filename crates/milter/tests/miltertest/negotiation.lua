-- Negotiation edge cases: an MTA granting fewer actions, an MTA offering
-- no protocol flags, an MTA older than version 2.
local name = "negotiation"
local function check(cond, msg) if not cond then error(msg, 2) end end
local addr = "inet:" .. port .. "@127.0.0.1"
-- Beware: this miltertest's mt.negotiate takes (conn, version, STEPS,
-- ACTIONS), the other way round from its manual (checked with strace: the
-- third argument lands in the protocol field of SMFIC_OPTNEG).

local function message(conn, body)
  check(mt.mailfrom(conn, "<user@example.org>") == nil, "mailfrom")
  check(mt.rcptto(conn, "<a@example.com>") == nil, "rcpt")
  check(mt.header(conn, "Subject", "s") == nil, "header")
  check(mt.bodystring(conn, body .. "\r\n") == nil, "body")
  check(mt.eom(conn) == nil, "eom")
end

local function main()
  -- Only header additions granted: a body replacement must become a
  -- tempfail (reply code), with nothing modified; plain messages still work.
  local conn = mt.connect(addr, 20, 0.1)
  check(conn ~= nil, "connect 1")
  check(mt.negotiate(conn, 6, nil, SMFIF_ADDHDRS) == nil, "negotiate 1")
  check(mt.test_action(conn, SMFIF_ADDHDRS), "ADDHDRS not kept")
  check(not mt.test_action(conn, SMFIF_CHGBODY), "CHGBODY asked for although not offered")
  check(not mt.test_action(conn, SMFIF_QUARANTINE), "QUARANTINE asked for although not offered")
  check(mt.conninfo(conn, "client.example.org", "192.0.2.10") == nil, "conninfo 1")
  message(conn, "REPLACE-BODY")
  check(mt.getreply(conn) == SMFIR_REPLYCODE, "ungranted body replacement not refused")
  check(not mt.eom_check(conn, MT_BODYCHANGE), "body replaced although not granted")
  check(not mt.eom_check(conn, MT_HDRADD), "header added to a refused message")
  message(conn, "plain")
  check(mt.getreply(conn) == SMFIR_ACCEPT, "plain message not accepted")
  check(mt.eom_check(conn, MT_HDRADD, "X-MXGuard"), "X-MXGuard missing")
  mt.disconnect(conn)

  -- No protocol flags offered: every step answered, no leading space.
  conn = mt.connect(addr, 20, 0.1)
  check(conn ~= nil, "connect 2")
  check(mt.negotiate(conn, 6, 0, nil) == nil, "negotiate 2")
  check(not mt.test_option(conn, SMFIP_HDR_LEADSPC), "HDR_LEADSPC asked for although not offered")
  check(not mt.test_option(conn, SMFIP_NR_HDR), "NR_HDR asked for although not offered")
  check(mt.conninfo(conn, "client.example.org", "192.0.2.10") == nil, "conninfo 2")
  check(mt.getreply(conn) == SMFIR_CONTINUE, "connect not answered")
  check(mt.mailfrom(conn, "<user@example.org>") == nil, "mailfrom 2")
  check(mt.getreply(conn) == SMFIR_CONTINUE, "mail not answered")
  check(mt.header(conn, "Subject", "s") == nil, "header 2")
  check(mt.getreply(conn) == SMFIR_CONTINUE, "header not answered")
  check(mt.eoh(conn) == nil, "eoh 2")
  check(mt.getreply(conn) == SMFIR_CONTINUE, "eoh not answered")
  check(mt.eom(conn) == nil, "eom 2")
  check(mt.getreply(conn) == SMFIR_ACCEPT, "message not accepted")
  check(mt.eom_check(conn, MT_HDRADD, "X-MXGuard", "scanned; queue=none; rcpts=1"),
        "X-MXGuard without leading space: " .. tostring(mt.getheader(conn, "X-MXGuard", 0)))
  mt.disconnect(conn)

  -- Version 1: refused, the connection is closed.
  conn = mt.connect(addr, 20, 0.1)
  check(conn ~= nil, "connect 3")
  check(mt.negotiate(conn, 1, nil, nil) ~= nil, "version 1 was accepted")
end

local ok, err = pcall(main)
if not ok then
  mt.echo("FAIL " .. name .. ": " .. tostring(err))
  error(err)
end
mt.echo("PASS " .. name)
