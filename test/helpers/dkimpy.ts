// DKIM verification by an independent implementation: dkimpy (Debian's python3-dkim, run by the
// system python), against the records `relaybox dns` prints. No DNS server is needed: the records
// are handed to dkimpy's own lookup function.
import { execFileSync } from 'node:child_process';
import { runCli } from './instance.ts';

const VERIFY = `
import dkim, json, sys
data = json.load(sys.stdin)
records = data['records']
def lookup(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    return records.get(name.rstrip('.'), '').encode()
message = data['message'].encode()
count = message.split(b'\\r\\n\\r\\n', 1)[0].lower().count(b'\\r\\ndkim-signature:') + (1 if message.lower().startswith(b'dkim-signature:') else 0)
results = []
for index in range(count):
    d = dkim.DKIM(message)
    ok = d.verify(idx=index, dnsfunc=lookup)
    results.append({'ok': bool(ok), 'domain': (d.domain or b'').decode(), 'selector': (d.selector or b'').decode(), 'headers': [h.decode() for h in (d.include_headers or [])]})
print(json.dumps(results))
`;

export interface DkimpyResult {
  ok: boolean;
  domain: string;
  selector: string;
  /** The signature's h= list as dkimpy read it. */
  headers: string[];
}

/** The zone-file lines `relaybox dns` printed, as name → TXT value. */
export function printedTxt(output: string): Map<string, string> {
  const records = new Map<string, string>();
  for (const line of output.split('\n')) {
    const match = /^(\S+)\.\s+\d+ IN TXT\s+(.*)$/.exec(line);
    if (match) records.set(match[1]!, [...match[2]!.matchAll(/"([^"]*)"/g)].map((m) => m[1]).join(''));
  }
  return records;
}

/** The TXT records relaybox asks to publish for an instance's environment. */
export async function publishedRecords(env: Record<string, string>): Promise<Map<string, string>> {
  const printed = await runCli(['dns'], env);
  if (printed.code !== 0) throw new Error(`relaybox dns failed: ${printed.stderr}`);
  return printedTxt(printed.stdout);
}

/** Verifies every DKIM-Signature of a message with dkimpy; one result per signature, top first. */
export function dkimpyVerify(raw: string, records: Map<string, string>): DkimpyResult[] {
  const message = raw.replace(/\r?\n/g, '\r\n');
  const out = execFileSync('/usr/bin/python3', ['-c', VERIFY], { input: JSON.stringify({ message, records: Object.fromEntries(records) }), encoding: 'utf8' });
  return JSON.parse(out) as DkimpyResult[];
}
