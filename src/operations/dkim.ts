// DKIM keys and their rotation. Listing: every domain's selectors with whether the published record
// is the key in use (`relaybox dns --check`'s lookup). Rotation, one step at a time, never signing
// with a key whose record is not published: start (a new key, its record printed; it does not sign)
// → verify (looked up; only when DNS has it does signing switch to it) → the old record stays listed
// for a grace period → retire. Keys from DKIM_KEY_DIR are read-only: reported, never rotated.
import { existsSync, readFileSync } from 'node:fs';
import { parseSelector } from '../config/values.ts';
import type { Config } from '../config/schema.ts';
import { checkRecords, type CheckLine } from '../dns/check.ts';
import { recordsFor, type DnsRecord } from '../dns/records.ts';
import { dkimKeyAt, newDkimKey, plannedDkimKeys } from '../host/dkim-keys.ts';
import { readRotation, removeKeyFile, writeRotation, type DomainRotation } from '../host/dkim-rotation.ts';
import { writeDaemonFile } from '../host/files.ts';
import type { StatePaths } from '../render/paths.ts';
import type { Actor, Audit } from './audit.ts';
import { failed, notFound, parseDuration, usage } from './errors.ts';

export interface SelectorView {
  selector: string;
  role: 'signing' | 'pending' | 'retiring';
  record?: DnsRecord;
  check?: { status: CheckLine['status']; detail: string };
}

const DEFAULT_GRACE = '7d';
const VERIFY_EVERY_MS = 2000;

export class DkimOperations {
  private readonly config: () => Config;
  private readonly paths: StatePaths;
  private readonly resign: () => Promise<void>;
  private readonly audit: Audit;

  constructor(config: () => Config, paths: StatePaths, resign: () => Promise<void>, audit: Audit) {
    this.config = config;
    this.paths = paths;
    this.resign = resign;
    this.audit = audit;
  }

  private record(domain: string, selector: string): DnsRecord | undefined {
    const key = dkimKeyAt(this.paths, domain, selector);
    if (!existsSync(key.path)) return undefined;
    return recordsFor(this.config(), [{ domain, selector, pem: readFileSync(key.path, 'utf8') }]).get(domain)!.find((r) => r.kind === 'dkim');
  }

  async list(): Promise<Array<{ domain: string; keysFrom: 'DKIM_KEY_DIR' | 'generated'; rotatable: boolean; selectors: SelectorView[]; retireAfter?: number }>> {
    const config = this.config();
    const rotation = config.dkim?.keyDir ? {} : readRotation(this.paths);
    const planned = plannedDkimKeys(config, this.paths);
    const domains = [...new Set(planned.map((k) => k.domain))];
    const views = domains.map((domain) => {
      const r = rotation[domain];
      const selectors: SelectorView[] = [
        ...planned.filter((k) => k.domain === domain).map((k) => ({ selector: k.selector, role: 'signing' as const })),
        ...(r?.pending ? [{ selector: r.pending.selector, role: 'pending' as const }] : []),
        ...(r?.retiring?.selectors ?? []).map((selector) => ({ selector, role: 'retiring' as const })),
      ].map((view) => ({ ...view, ...(this.record(domain, view.selector) ? { record: this.record(domain, view.selector)! } : {}) }));
      return { domain, keysFrom: config.dkim?.keyDir ? ('DKIM_KEY_DIR' as const) : ('generated' as const), rotatable: !config.dkim?.keyDir, selectors, ...(r?.retiring ? { retireAfter: r.retiring.until } : {}) };
    });
    const records = views.flatMap((v) => v.selectors.flatMap((s) => (s.record ? [s.record] : [])));
    const checks = await checkRecords(config, records);
    for (const view of views) {
      for (const selector of view.selectors) {
        const line = checks.find((c) => c.record === selector.record);
        if (line) selector.check = { status: line.status, detail: line.detail };
      }
    }
    return views;
  }

  private domain(raw: string): { domain: string; state: ReturnType<typeof readRotation>; current: DomainRotation } {
    const config = this.config();
    const domain = raw.trim().toLowerCase();
    if (!config.dkim) throw failed('DKIM signing is off (DKIM_SIGNING=off, or a mailbox replica): nothing to rotate');
    const signing = config.dkim.signing.find((s) => s.domain === domain);
    if (!signing) throw notFound(`${domain} is not signed for; DKIM domains: ${config.dkim.signing.map((s) => s.domain).join(', ')}`);
    if (config.dkim.keyDir) throw failed(`the keys come from DKIM_KEY_DIR (${config.dkim.keyDir}), which relaybox never writes: rotate there (relaybox dkim-keygen --selector NEW, publish the record, add the file; drop the old file after a grace period)`);
    const state = readRotation(this.paths);
    return { domain, state, current: state[domain] ?? { signing: signing.selectors } };
  }

  /** A new key under a new selector; it does not sign until `verify` has seen its record in DNS. */
  async start(rawDomain: string, rawSelector: string | undefined, actor: Actor): Promise<{ domain: string; selector: string; record: DnsRecord }> {
    const { domain, state, current } = this.domain(rawDomain);
    if (current.pending) throw failed(`a rotation of ${domain} is under way (selector ${current.pending.selector}): verify it, or cancel it first`);
    if (current.retiring) throw failed(`${domain}'s previous selector ${current.retiring.selectors.join(', ')} is still in its grace period: retire it first`);
    const selector = rawSelector ? parseSelector(rawSelector) : { ok: true as const, value: this.nextSelector(current.signing) };
    if (!selector.ok) throw usage(`selector: ${selector.message}`);
    if (current.signing.includes(selector.value) || existsSync(dkimKeyAt(this.paths, domain, selector.value).path)) throw usage(`selector: ${selector.value} is (or was) in use for ${domain}; pick a new one`);
    writeDaemonFile({ path: dkimKeyAt(this.paths, domain, selector.value).path, content: await newDkimKey(), mode: 0o600, owner: 'opendkim' });
    writeRotation(this.paths, { ...state, [domain]: { ...current, pending: { selector: selector.value, createdAt: Date.now() } } });
    this.audit.record(actor, 'dkim_rotate_start', { domain, selector: selector.value }, `DKIM rotation of ${domain}: new selector ${selector.value} generated (not signing until its record is published)`);
    return { domain, selector: selector.value, record: this.record(domain, selector.value)! };
  }

  private nextSelector(inUse: string[]): string {
    const day = new Date().toISOString().slice(0, 10).replaceAll('-', '');
    for (const suffix of ['', ...'abcdefghijklmnopqrstuvwxyz']) {
      const candidate = `rb${day}${suffix}`;
      if (!inUse.includes(candidate)) return candidate;
    }
    throw failed('no free selector name today; give one with --selector');
  }

  /**
   * Looks the pending record up (for up to `wait`); published and matching → signing switches to the
   * new selector, the old ones are listed for `grace`. Not published → nothing changes (exit 1).
   */
  async verify(rawDomain: string, options: { wait?: string; grace?: string }, actor: Actor): Promise<{ domain: string; switched: boolean; selector: string; check: { status: string; detail: string }; retireAfter?: number }> {
    const { domain, current } = this.domain(rawDomain);
    if (!current.pending) throw failed(`no rotation of ${domain} under way: start one with \`relaybox dkim rotate ${domain}\``);
    const waitMs = parseDuration('wait', options.wait ?? '0') * 1000;
    const graceSeconds = parseDuration('grace', options.grace ?? DEFAULT_GRACE);
    const selector = current.pending.selector;
    const record = this.record(domain, selector);
    if (!record) throw failed(`the key for ${domain} selector ${selector} is missing from ${this.paths.dkimKeys}: cancel the rotation and start again`);
    const deadline = Date.now() + waitMs;
    let line = (await checkRecords(this.config(), [record]))[0]!;
    while (line.status !== 'ok' && Date.now() + VERIFY_EVERY_MS <= deadline) {
      await new Promise((resolve) => setTimeout(resolve, VERIFY_EVERY_MS));
      line = (await checkRecords(this.config(), [record]))[0]!;
    }
    const check = { status: line.status, detail: line.detail };
    if (line.status !== 'ok') return { domain, switched: false, selector, check };
    const retireAfter = Date.now() + graceSeconds * 1000;
    const state = readRotation(this.paths);
    writeRotation(this.paths, { ...state, [domain]: { signing: [selector], retiring: { selectors: current.signing, until: retireAfter } } });
    try {
      await this.resign();
    } catch (error) {
      writeRotation(this.paths, state);
      await this.resign().catch(() => undefined);
      throw failed(`switching ${domain} to selector ${selector} failed (${(error as Error).message}); it still signs with ${current.signing.join(', ')}`);
    }
    this.audit.record(actor, 'dkim_rotate_switch', { domain, selector, retiring: current.signing, retireAfter }, `DKIM rotation of ${domain}: now signing with ${selector}; ${current.signing.join(', ')} listed until ${new Date(retireAfter).toISOString()}`);
    return { domain, switched: true, selector, check, retireAfter };
  }

  /** The old selectors' keys removed once the grace period is over (or `force`): remove their records then. */
  async retire(rawDomain: string, force: boolean, actor: Actor): Promise<{ domain: string; retired: string[] }> {
    const { domain, state, current } = this.domain(rawDomain);
    if (!current.retiring) throw failed(`${domain} has no selector in a grace period`);
    if (current.retiring.until > Date.now() && !force) throw failed(`${domain}'s old selector ${current.retiring.selectors.join(', ')} stays listed until ${new Date(current.retiring.until).toISOString()} (mail signed with it may still be verified); --force retires it now`);
    for (const selector of current.retiring.selectors) removeKeyFile(dkimKeyAt(this.paths, domain, selector).path);
    const { retiring, ...rest } = current;
    writeRotation(this.paths, { ...state, [domain]: rest });
    this.audit.record(actor, 'dkim_rotate_retire', { domain, selectors: retiring.selectors }, `DKIM rotation of ${domain}: retired ${retiring.selectors.join(', ')} (remove their records from DNS)`);
    return { domain, retired: retiring.selectors };
  }

  /** Drops a rotation that has not switched yet (its key deleted; signing never changed). */
  async cancel(rawDomain: string, actor: Actor): Promise<{ domain: string; cancelled: string }> {
    const { domain, state, current } = this.domain(rawDomain);
    if (!current.pending) throw failed(`no rotation of ${domain} under way`);
    removeKeyFile(dkimKeyAt(this.paths, domain, current.pending.selector).path);
    const { pending, ...rest } = current;
    writeRotation(this.paths, { ...state, [domain]: rest });
    this.audit.record(actor, 'dkim_rotate_cancel', { domain, selector: pending.selector }, `DKIM rotation of ${domain} cancelled (selector ${pending.selector} deleted)`);
    return { domain, cancelled: pending.selector };
  }
}
