/// <reference lib="dom" />
// The web console in a real browser (Debian's chromium through playwright-core, headless, offline):
// a wrong login refused; an admin logs in with their mail password, sees a held message, releases
// it and it arrives upstream once; lifts a ban; the page loads nothing from elsewhere and breaks no
// rule of its Content-Security-Policy. RELAYBOX_SCREENSHOT=path saves the queue view (README's picture).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { DOMAIN, freePort, Instance, PASSWORD, runCli, waitFor } from '../helpers/instance.ts';
import { SmtpClient, message } from '../helpers/smtp.ts';
import { DnsServer } from '../helpers/dns-server.ts';

const ALICE = `alice@${DOMAIN}`;
const BANNED = '192.0.2.77';

async function submit(box: Instance, subject: string) {
  const { client } = await SmtpClient.connect(box.ports.submission);
  try {
    await client.ehlo();
    await client.starttls();
    assert.equal((await client.authPlain(ALICE, PASSWORD)).code, 235);
    assert.equal((await client.send(ALICE, ['reader@outside.example'], message(ALICE, 'reader@outside.example', subject))).final.code, 250);
  } finally {
    await client.quit();
  }
}

describe('web console in chromium', () => {
  let box: Instance;
  let port: number;
  let profile: string;
  let context: BrowserContext;
  let page: Page;
  let dns: DnsServer;
  const problems: string[] = [];
  const foreign: string[] = [];

  before(async () => {
    port = await freePort();
    dns = await DnsServer.start();
    box = await Instance.start({ ADMIN_USERS: ALICE, PORT_ADMIN: String(port), AUTH_BAN_THRESHOLD: '5', DNS_SERVERS: dns.address });
    profile = mkdtempSync('/tmp/rbt-chromium-');
    context = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1200, height: 700 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    // The expected refusals (the session check before login, the wrong login) are not problems.
    page.on('console', (entry) => entry.type() === 'error' && !/status of 401/.test(entry.text()) && problems.push(entry.text()));
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('request', (request) => !request.url().startsWith(`http://127.0.0.1:${port}/`) && foreign.push(request.url()));
  });
  after(async () => {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
    await box.destroy();
    await dns.stop();
  });

  test('a wrong login is refused', async () => {
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.fill('#login-user', ALICE);
    await page.fill('#login-password', 'not the password');
    await page.click('#login-submit');
    await page.waitForFunction(() => document.getElementById('login-error')!.textContent !== '');
    assert.match(await page.textContent('#login-error') ?? '', /wrong token, or wrong user or password/);
    assert.equal(await page.isVisible('#app-view'), false);
  });

  test('log in, see the held message, release it: it arrives upstream once', async () => {
    await box.sink.stop();
    await submit(box, 'console-release');
    const [id] = await waitFor('the message deferred', 30_000, async () => {
      const list = JSON.parse((await runCli(['queue', 'list', '--state', 'deferred', '--json'], box.env)).stdout) as { messages: Array<{ id: string }> };
      return list.messages.length > 0 ? list.messages.map((m) => m.id) : undefined;
    }, 500);
    assert.equal((await runCli(['queue', 'hold', id!], box.env)).code, 0);
    await box.sink.resume();

    await page.fill('#login-user', ALICE);
    await page.fill('#login-password', PASSWORD);
    await page.click('#login-submit');
    await page.waitForSelector('#status-line');
    assert.equal(await page.textContent('#who'), `logged in as ${ALICE}`);
    assert.match(await page.textContent('#status-line') ?? '', /: ready$/);

    await page.click('nav button[data-tab="queue"]');
    await page.selectOption('#filter-state', 'hold');
    await page.click('#queue-filter button[type="submit"]');
    const checkbox = `#queue-table input.pick[value="${id}"]`;
    await page.waitForSelector(checkbox);
    assert.match(await page.textContent('#queue-table') ?? '', /hold.*alice@relaybox\.test.*reader@outside\.example/s);
    if (process.env.RELAYBOX_SCREENSHOT) await page.screenshot({ path: process.env.RELAYBOX_SCREENSHOT, fullPage: true });
    await page.check(checkbox);
    await page.click('button[data-queue-action="release"]');
    await page.waitForFunction((queued) => document.getElementById('notice')!.textContent === `release: ${queued}`, id);
    await waitFor('the released message upstream', 20_000, () => box.sink.messages().some((m) => m.includes('Subject: console-release')) || undefined, 200);
    await box.waitQueueEmpty();
    assert.equal(box.sink.messages().filter((m) => m.includes('Subject: console-release')).length, 1);
    const audit = box.logs().find((l) => l.event === 'admin_action' && l.action === 'queue_release');
    assert.equal(audit?.actor, ALICE);
  });

  test('lift a ban', async () => {
    assert.equal((await runCli(['bans', 'add', BANNED, '--duration', '1h'], box.env)).code, 0);
    await page.click('nav button[data-tab="bans"]');
    await page.waitForSelector(`button[data-lift="${BANNED}"]`);
    await page.click(`button[data-lift="${BANNED}"]`);
    await page.waitForFunction((address) => document.getElementById('notice')!.textContent === `lifted the ban on ${address}`, BANNED);
    assert.equal((await runCli(['bans', 'list'], box.env)).stdout.trim(), 'no bans in force');
    // The DNS records to publish, with what DNS answers: only the MX is published here.
    dns.set(DOMAIN, { MX: [[10, `mail.${DOMAIN}`]] });
    await page.click('nav button[data-tab="dns"]');
    await page.waitForSelector('#dns-table td code');
    const rows = await page.$$eval('#dns-table tr', (trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td')).map((td) => td.textContent ?? '')));
    assert.ok(rows.some((r) => r[0] === DOMAIN && r[1] === 'MX' && /^ok: MX mail\.relaybox\.test$/.test(r[3] ?? '')), JSON.stringify(rows));
    assert.ok(rows.some((r) => r[0] === `relaybox._domainkey.${DOMAIN}` && /^v=DKIM1; k=rsa; p=/.test(r[2] ?? '') && /^missing/.test(r[3] ?? '')), JSON.stringify(rows));
    assert.match(await page.textContent('#dkim-list') ?? '', /relaybox\s*signing/);
    assert.deepEqual(foreign, [], 'nothing loaded from elsewhere');
    assert.deepEqual(problems, [], 'no script error and no CSP violation');
  });
});
