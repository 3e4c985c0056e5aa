// Drives the mxguard web console in Debian's Chromium through playwright-core.
// Run by crates/server/tests/web.rs against a real `mxguard serve`; every
// input comes from the environment:
//   MXG_BASE      console URL (http://127.0.0.1:PORT)
//   MXG_USER, MXG_PASS   an admin login
//   MXG_SMTP_PORT the gateway's SMTP port (swaks sends through it)
//   MXG_MAILDIR   the gateway's Maildir root (data_dir/maildir)
//   MXG_SHOTS     where screenshots go
// Exits non-zero (with the reason) on the first thing that is not as expected.
// Missing node modules, chromium or swaks are failures, never skips.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

const BASE = need("MXG_BASE");
const USER = need("MXG_USER");
const PASS = need("MXG_PASS");
const SMTP_PORT = need("MXG_SMTP_PORT");
const MAILDIR = need("MXG_MAILDIR");
const SHOTS = need("MXG_SHOTS");
const CHROMIUM = process.env.MXG_CHROMIUM || "/usr/bin/chromium";
const EICAR = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

// Preflight: fail loudly.
for (const bin of [CHROMIUM, "/usr/bin/swaks"]) {
  if (!fs.existsSync(bin)) {
    throw new Error(`${bin} not found: install Debian's chromium and swaks (.ci/run does)`);
  }
}
const { chromium } = await import("playwright-core").catch((e) => {
  throw new Error(`playwright-core is not installed: run \`npm ci\` in ${path.dirname(new URL(import.meta.url).pathname)} (${e.message})`);
});
fs.mkdirSync(SHOTS, { recursive: true });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function log(...a) {
  console.log("[console.mjs]", ...a);
}
function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  log("ok:", what);
}

function swaks(args) {
  return execFileSync(
    "/usr/bin/swaks",
    ["--server", "127.0.0.1", "--port", SMTP_PORT, "--timeout", "30", ...args],
    { encoding: "utf8" },
  );
}

// Files in a user's Maildir new/ whose text satisfies `pred`, waiting up to `ms`.
async function waitMail(user, pred, ms) {
  const dir = path.join(MAILDIR, user, "new");
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    const files = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
    for (const f of files) {
      const text = fs.readFileSync(path.join(dir, f), "utf8");
      if (pred(text)) return text;
    }
    await sleep(200);
  }
  return null;
}

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "mxg-chromium-"));
const ctx = await chromium.launchPersistentContext(userDataDir, {
  executablePath: CHROMIUM,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1400, height: 1000 },
});
const problems = [];
let shot = 0;
async function snap(page, name) {
  shot += 1;
  const file = path.join(SHOTS, `${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log("screenshot", file);
}

try {
  const page = ctx.pages()[0] || (await ctx.newPage());
  // Any CSP violation or script error on our pages is a failure.
  page.on("console", (m) => {
    // The deliberate wrong password answers 401; anything else is a problem.
    if (m.type() === "error" && !m.text().includes("status of 401")) problems.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));

  // 1. Not logged in: the console sends us to the login form.
  await page.goto(`${BASE}/quarantine`);
  check(page.url().startsWith(`${BASE}/login`), "anonymous visit redirects to /login");
  await snap(page, "login");
  await page.fill("#user", USER);
  await page.fill("#password", "wrong password");
  await page.click("#login");
  check((await page.textContent("body")).includes("Wrong user name or password"), "wrong password refused");
  await page.fill("#user", USER);
  await page.fill("#password", PASS);
  await page.click("#login");
  await page.waitForURL(`${BASE}/quarantine`);
  check(true, "logged in, back at the page asked for");
  const cookies = await ctx.cookies();
  const sess = cookies.find((c) => c.name === "mxguard_session");
  check(sess && sess.httpOnly && sess.sameSite === "Strict", "session cookie is HttpOnly and SameSite=Strict");

  // 2. An EICAR attachment through the gateway lands in the quarantine.
  const att = path.join(userDataDir, "invoice.com");
  fs.writeFileSync(att, EICAR);
  const t = swaks([
    "--to", "user@example.com",
    "--from", "billing@sender.test",
    "--header", "Subject: Invoice 4711 <b>bold</b>",
    "--body", "Please find the invoice attached.\nhttp://tracker.example/pixel.gif\n",
    "--attach", att,
  ]);
  check(/250 2\.0\.0/.test(t), "the gateway accepted the EICAR message");
  let row = null;
  for (let i = 0; i < 50 && !row; i++) {
    await page.goto(`${BASE}/quarantine?subject=Invoice+4711`);
    row = await page.$("#qtable tbody tr a");
    if (!row) await sleep(200);
  }
  check(row, "the message is listed in the quarantine");
  const rowText = await page.textContent("#qtable tbody tr");
  check(rowText.includes("EICAR") && rowText.includes("billing@sender.test"), "row shows the threat and the sender");
  await snap(page, "quarantine-list");
  await row.click();
  await page.waitForSelector("#release");
  const body = await page.textContent("main");
  check(body.includes("Win.Test.EICAR"), "findings name the EICAR signature");
  check(body.includes("Please find the invoice attached."), "safe text rendering of the body");
  check((await page.$$eval("main b", (els) => els.filter((e) => e.textContent === "bold").length)) === 0, "the subject's markup is shown as text");
  check((await page.textContent("pre.headers")).includes("Subject: Invoice 4711 <b>bold</b>"), "headers shown verbatim (escaped)");
  check((await page.$$("main img")).length === 0, "no image from the message is loaded");
  await snap(page, "quarantine-item");

  // 3. Release it: delivered into the Maildir with the release token.
  await page.click("#release-btn");
  await page.waitForSelector(".notice.ok");
  check((await page.textContent(".notice.ok")).includes("Released to user@example.com"), "release confirmed");
  await snap(page, "released");
  const delivered = await waitMail("user", (m) => m.includes("X-MXGuard-Released:") && m.includes("Invoice 4711"), 20000);
  check(delivered, "the released message was delivered to the mailbox");

  // 4. Message trace: the decision trail of that message.
  await page.goto(`${BASE}/events?sender=billing%40sender.test`);
  const traceLink = await page.$("table.list tbody tr a");
  check(traceLink, "the event log lists the message");
  await traceLink.click();
  await page.waitForSelector("section.trail");
  check((await page.textContent("main")).includes("quarantine"), "trail shows the quarantine action");
  await snap(page, "trace");

  // 5. Policies: a rule that tags a subject keyword; validate, dry run, save.
  await page.goto(`${BASE}/policy`);
  const bad = '[[rules]]\nname = "PROJECT_X"\nmatch = { subject = { keywords = ["project-x"] } }\naction = "explode"\n';
  await page.fill("#policy-text", bad);
  await page.click("button[value=check]");
  await page.waitForSelector(".notice.err");
  check((await page.textContent(".notice.err")).includes("rules[0]"), "an invalid policy is refused with its key path");
  await snap(page, "policy-invalid");
  const good = '[[rules]]\nname = "PROJECT_X"\nmatch = { subject = { keywords = ["project-x"] } }\naction = "tag"\nsubject_tag = "[PROJECT-X]"\n';
  await page.fill("#policy-text", good);
  await page.click("button[value=check]");
  await page.waitForSelector(".notice.ok");
  const valid = await page.textContent(".notice.ok");
  check(valid.includes("Valid:") && valid.includes("PROJECT_X"), `the new policy validates (${valid})`);
  await page.click("details summary");
  await page.fill("input[name=mail_from]", "a@sender.test");
  await page.fill("input[name=rcpts]", "user@example.com");
  await page.fill("#sample", "From: a@sender.test\nTo: user@example.com\nSubject: news about Project-X\n\nhello\n");
  await page.click("#dry-run");
  await page.waitForSelector("section.dry-run");
  const dry = await page.textContent("section.dry-run");
  check(dry.includes("PROJECT_X") && dry.includes("tag (PROJECT_X)"), "dry run fires the rule and its tag action");
  await snap(page, "policy-dry-run");
  await page.fill("input.comment", "tag Project-X mail");
  await page.click("#save");
  await page.waitForSelector(".notice.ok");
  check((await page.textContent(".notice.ok")).includes("Saved and applied"), "policy saved and applied");
  check((await page.textContent("main")).includes("tag Project-X mail"), "history lists the change with its comment");
  await snap(page, "policy-saved");
  await page.click("table.list tr td a");
  await page.waitForSelector("pre.diff");
  check((await page.textContent("pre.diff")).includes('+subject_tag = "[PROJECT-X]"'), "history shows the diff");
  await snap(page, "policy-diff");

  // 6. Applied without a restart: a new message gets the tag.
  const t2 = swaks([
    "--to", "user@example.com",
    "--from", "news@sender.test",
    "--header", "Subject: Status of project-x",
    "--body", "all good\n",
  ]);
  check(/250 2\.0\.0/.test(t2), "the gateway accepted the keyword message");
  const tagged = await waitMail("user", (m) => /Subject: \[PROJECT-X\] Status of project-x/.test(m), 20000);
  check(tagged, "the saved policy tagged the next message's subject");

  // 7. Dashboard, reports, signatures, system, users render.
  await page.goto(`${BASE}/`);
  await page.waitForSelector("svg.chart");
  const tiles = await page.textContent(".tiles");
  check(/messages/.test(tiles), "dashboard tiles");
  await snap(page, "dashboard");
  await page.goto(`${BASE}/reports?since=24h`);
  check((await page.textContent("main")).includes("Win.Test.EICAR"), "report lists the threat");
  await snap(page, "reports");
  const csv = await page.evaluate(async () => (await fetch("/reports/csv?since=24h&section=threats")).text());
  check(csv.startsWith("threat,engine,messages") && csv.includes("Win.Test.EICAR"), "report CSV download");
  await page.goto(`${BASE}/signatures`);
  check((await page.textContent("main")).includes("Signatures"), "signatures page");
  await snap(page, "signatures");
  await page.goto(`${BASE}/system`);
  check((await page.textContent("main")).includes("smtp"), "system page lists the listeners");
  await snap(page, "system");
  await page.goto(`${BASE}/users`);
  await page.fill("form[action='/tokens'] input[name=name]", "browser-test");
  await page.click("form[action='/tokens'] button");
  await page.waitForSelector("#new-token");
  const token = (await page.textContent("#new-token")).trim();
  check(token.startsWith("mxg_"), "API token created and shown once");
  await snap(page, "users");
  // The token works for the API and /metrics.
  const api = await fetch(`${BASE}/api/v1/quarantine?subject=Invoice`, { headers: { Authorization: `Bearer ${token}` } });
  const apiJson = await api.json();
  check(api.status === 200 && apiJson.total === 1, "API token reads the quarantine");
  const metrics = await (await fetch(`${BASE}/metrics`, { headers: { Authorization: `Bearer ${token}` } })).text();
  check(metrics.includes("mxguard_messages_24h") && metrics.includes("mxguard_queue_size"), "metrics with the token");
  const anon = await fetch(`${BASE}/api/v1/quarantine`);
  check(anon.status === 401, "the API refuses anonymous calls");

  // 8. Log out.
  await page.click("header button[type=submit]");
  await page.waitForURL(/\/login/);
  await page.goto(`${BASE}/`);
  check(page.url().startsWith(`${BASE}/login`), "logged out");

  check(problems.length === 0, `no console errors or CSP violations (${problems.join("; ")})`);
  console.log("console.mjs: all checks passed");
} finally {
  await ctx.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
