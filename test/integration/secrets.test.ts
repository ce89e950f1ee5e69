// Secrets hygiene over a whole run of an instance: no configured password, relay password or hash in
// any log line, HTTP body or check-config output; the files holding them are not world-readable.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { DOMAIN, Instance, PASSWORD, runCli, waitFor } from '../helpers/instance.ts';
import { SmtpClient, message } from '../helpers/smtp.ts';

const RELAY_PASSWORD = 'relay-secret-Zq81-do-not-log';

describe('secrets hygiene', () => {
  let box: Instance;
  before(async () => {
    box = await Instance.start({ RELAY_USERNAME: 'relay-user', RELAY_PASSWORD, AUTH_FAILURE_DELAY: '0', LOG_LEVEL: 'debug' });
  });
  after(async () => {
    await box.destroy(); // destroy() also asserts hygiene over every line and body
  });

  test('a whole session leaves no secret in logs, HTTP bodies or check-config', async () => {
    for (const password of ['wrong password', PASSWORD]) {
      const { client } = await SmtpClient.connect(box.ports.submission);
      await client.ehlo();
      await client.starttls();
      await client.authPlain(`alice@${DOMAIN}`, password);
      await client.authLogin(`bob@${DOMAIN}`, password);
      await client.send(`alice@${DOMAIN}`, ['x@outside.example'], message(`alice@${DOMAIN}`, 'x@outside.example', 'secret test'));
      await client.quit();
    }
    process.kill(Number(readFileSync(`${box.stateDir}/run/master.pid`, 'utf8')), 'SIGKILL');
    await waitFor('recovery', 20_000, async () => ((await box.get('/ready')).status === 200 ? true : undefined), 200);
    await box.get('/health');
    const check = await runCli(['check-config'], box.env);
    assert.equal(check.code, 0);
    const everything = [...box.lines, ...box.bodies, check.stdout, check.stderr].join('\n');
    assert.ok(box.lines.length > 20, 'the run produced logs to check');
    for (const secret of box.secrets()) assert.ok(!everything.includes(secret), `secret ${secret.slice(0, 4)}... leaked`);
    assert.ok(!everything.includes(RELAY_PASSWORD));
    assert.ok(!everything.includes(Buffer.from(`\0alice@${DOMAIN}\0${PASSWORD}`).toString('base64')), 'the AUTH PLAIN response leaked');
  });

  test('the passwd-file is 0640 (group dovecot) and the relay password map 0600', () => {
    const passwd = statSync(`${box.stateDir}/dovecot/passwd`);
    assert.equal(passwd.mode & 0o777, 0o640);
    const dovecotGid = Number(execFileSync('getent', ['group', 'dovecot'], { encoding: 'utf8' }).split(':')[2]);
    assert.ok(Number.isInteger(dovecotGid) && dovecotGid > 0, 'no group dovecot on this host');
    assert.equal(passwd.gid, dovecotGid, 'the passwd-file belongs to group dovecot');
    assert.equal(passwd.uid, 0, 'the passwd-file belongs to root');
    const relay = statSync(`${box.stateDir}/postfix/relay_password`);
    assert.equal(relay.mode & 0o777, 0o600);
    assert.equal(statSync(`${box.stateDir}/tls/key.pem`).mode & 0o077, 0);
  });
});
