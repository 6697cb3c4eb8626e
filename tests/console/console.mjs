// The console in a real browser: Debian's chromium driven by Playwright, each role presenting its
// development client certificate. tests/e2e/console.rs starts the gateway, plays the story, makes
// a dead letter and runs this with what it expects in JXG_CONSOLE (JSON); any failed check exits
// non-zero with what failed. It prints, last, every admin API call the console made.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const cfg = JSON.parse(process.env.JXG_CONSOLE);
const require = createRequire(path.join(cfg.modules, 'noop.js'));
const { chromium } = require('playwright-core');
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const failures = [];
const calls = new Set();
const visited = [];
fs.mkdirSync(cfg.out, { recursive: true });

function check(ok, what) {
  if (!ok) {
    failures.push(what);
    console.error(`FAILED: ${what}`);
  }
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

async function as(who, locale = 'en-GB') {
  const context = await browser.newContext({
    locale,
    clientCertificates: [{ origin: cfg.admin, certPath: cfg.certs[who].cert, keyPath: cfg.certs[who].key }],
    viewport: { width: 1360, height: 900 },
  });
  const page = await context.newPage();
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.origin === cfg.admin && !u.pathname.startsWith('/console')) {
      calls.add(`${r.method()} ${u.pathname}`);
    }
  });
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) visited.push(f.url());
  });
  page.on('pageerror', (e) => check(false, `${who}: a script error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content.Security.Policy|Refused to/i.test(m.text())) {
      check(false, `${who}: the page broke its Content-Security-Policy: ${m.text()}`);
    }
  });
  return { context, page };
}

async function go(page, hash) {
  const url = `${cfg.admin}/console/${hash}`;
  // the same address again is no navigation: load it anew
  if (page.url() === url) {
    await page.reload();
  } else {
    await page.goto(url);
  }
  // the console marks the page drawn in full (its reads answered) with the address it drew
  await page.waitForFunction(() => document.body.dataset.drawn === (location.hash || '#'));
}

async function accessible(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  });
  const serious = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  check(serious.length === 0, `${name}: axe finds ${JSON.stringify(serious)}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(cfg.out, `${name}.png`), fullPage: true });
  await accessible(page, name);
}

async function text(page) {
  return page.locator('#main-content').innerText();
}

async function navLinks(page) {
  return page.locator('#nav a').allInnerTexts();
}

// ---- the operator -------------------------------------------------------------------------
{
  const { context, page } = await as('operator');
  await go(page, '');
  await page.locator('table tbody tr').first().waitFor();
  for (const [name, accepted] of Object.entries(cfg.accepted)) {
    const row = page.locator('table tbody tr', { has: page.locator('th', { hasText: name }) });
    const cells = await row.locator('td').allInnerTexts();
    check(cells[0] === String(accepted), `overview: ${name} accepted ${cells[0]}, expected ${accepted}`);
  }
  // the first Tab stop skips the menu to the page
  await page.keyboard.press('Tab');
  check((await page.evaluate(() => document.activeElement.id)) === 'skip', 'the first Tab stop is the skip link');
  await page.keyboard.press('Enter');
  check((await page.evaluate(() => document.activeElement.id)) === 'main-content', 'the skip link moves to the page');
  const overview = await text(page);
  check(overview.includes('Audit chain') && overview.includes('Certificates'), 'overview: the store, certificates and audit cards');
  check(!(await navLinks(page)).includes('Audit'), 'the operator sees no audit page in the menu');
  await shot(page, 'overview');

  await go(page, `#/messages?case=${encodeURIComponent(cfg.case)}&go=1`);
  const found = await page.locator('#results tbody tr').count();
  check(found === cfg.storyIds.length, `messages: the case finds ${found} message(s), expected ${cfg.storyIds.length}`);
  await shot(page, 'messages');

  await go(page, `#/message/${cfg.storyIds[0]}`);
  const m = await text(page);
  check(m.includes(cfg.storyIds[0]) && m.includes('Recipients'), 'message: its page shows it and its recipients');
  check(/ by [a-z0-9-]+ \(/.test(m), 'message: a recipient copy names what was removed and by which rule');
  await shot(page, 'message');

  await go(page, '#/dead-letters');
  const row = page.locator('tbody tr', { hasText: cfg.dead.id });
  check((await row.count()) === 1, 'dead letters: the test dead letter is listed');
  await shot(page, 'dead-letters');
  // with the keyboard alone: the replay button, then from the dialog's Cancel to its OK
  await row.locator('button.replay').focus();
  await page.keyboard.press('Enter');
  const dialog = page.locator('#confirm');
  await dialog.waitFor({ state: 'visible' });
  const asks = await dialog.innerText();
  check(asks.includes(cfg.dead.id) && asks.includes(cfg.dead.recipient), `replay: the confirmation names what is sent again: ${asks}`);
  check((await page.evaluate(() => document.activeElement.id)) === 'confirm-cancel', 'replay: the dialog opens on Cancel');
  await page.keyboard.press('Tab');
  check((await page.evaluate(() => document.activeElement.id)) === 'confirm-ok', 'replay: Tab reaches OK');
  await page.keyboard.press('Enter');
  await page.locator('#status', { hasText: 'queued' }).waitFor({ timeout: 15000 });
  let delivered = false;
  for (let i = 0; i < 60 && !delivered; i++) {
    await go(page, `#/message/${cfg.dead.id}`);
    const r = page.locator('tbody tr', { has: page.locator('th', { hasText: cfg.dead.recipient }) });
    delivered = (await r.innerText()).includes('delivered');
    if (!delivered) await page.waitForTimeout(250);
  }
  check(delivered, 'replay: the replayed dead letter is delivered');

  await go(page, `#/cases/${encodeURIComponent(cfg.case)}`);
  check((await page.locator('ol.timeline li').count()) === cfg.storyIds.length, 'case: every message on the timeline');
  check((await page.locator('figure svg.chart rect.bar').count()) > 0, 'case: the stages drawn as a chart');
  check((await page.locator('figure').count()) >= 2, 'case: the chain-wide stage histograms drawn');
  await shot(page, 'case');

  await go(page, `#/policies?message=${cfg.storyIds[0]}&recipient=${cfg.explainRecipient}`);
  const p = await page.locator('#explained').innerText();
  check(p.includes('permit') && p.includes(cfg.explainRecipient), `policies: the explanation: ${p}`);
  await shot(page, 'policies');

  await go(page, '#/audit');
  check((await text(page)).includes('not for your role'), 'the operator sees no audit page');
  check((await page.locator('#a-cpr').count()) === 0, 'the operator gets no subject access form');
  await context.close();
}

// ---- the auditor, in Danish from Accept-Language --------------------------------------------
{
  const { context, page } = await as('auditor', 'da-DK');
  await go(page, '');
  check((await page.locator('h1').innerText()) === 'Overblik', 'Danish from Accept-Language');
  const links = await navLinks(page);
  check(!links.includes('Opgivne leveringer') && links.includes('Revision'), `the auditor's menu: ${links}`);
  await page.selectOption('#lang', 'en');
  await page.locator('h1', { hasText: 'Overview' }).waitFor();
  await go(page, '#/dead-letters');
  check((await page.locator('button.replay').count()) === 0, 'the auditor has no replay button');
  check((await text(page)).includes('not for your role'), 'the auditor sees no dead-letter page');

  await go(page, '#/audit');
  await page.locator('button', { hasText: 'Verify the audit log' }).click();
  await page.locator('section p[role=status]', { hasText: 'verifies' }).waitFor({ timeout: 30000 });

  await page.fill('#a-cpr', cfg.cpr);
  await page.locator('form', { has: page.locator('#a-cpr') }).locator('button').click();
  await page.locator('text=disclosure(s) of this person').waitFor();
  const rows = await page.locator('table', { hasText: 'Every disclosure' }).locator('tbody tr').allInnerTexts();
  check(rows.length === cfg.disclosures.length, `subject access: ${rows.length} disclosure(s), expected ${cfg.disclosures.length}`);
  for (const d of cfg.disclosures) {
    check(rows.some((r) => r.includes(d.recipient) && r.includes(d.message_id)), `subject access: ${d.recipient} of ${d.message_id}`);
  }
  await shot(page, 'audit');
  check(!(await page.title()).includes(cfg.cpr), 'the CPR number is in no title');
  const history = await page.evaluate(() => [location.href, history.length]);
  check(!history[0].includes(cfg.cpr), 'the CPR number is in no address');
  await context.close();
}

// ---- an authority's certificate ----------------------------------------------------------
{
  const { context, page } = await as('police');
  const r = await page.goto(`${cfg.admin}/console/`);
  check(r.status() === 403, `an authority's certificate gets ${r.status()} from the console`);
  const js = await page.goto(`${cfg.admin}/console/app.js`);
  check(js.status() === 403, `an authority's certificate gets ${js.status()} for the console's script`);
  await context.close();
}

await browser.close();
for (const u of visited) {
  check(!u.includes(cfg.cpr) && !u.includes(`${cfg.cpr.slice(0, 6)}-${cfg.cpr.slice(6)}`), `an address holds the CPR number: ${u}`);
}
console.log(JSON.stringify({ calls: [...calls].sort(), visited: visited.length, failures }));
process.exit(failures.length ? 1 : 0);
