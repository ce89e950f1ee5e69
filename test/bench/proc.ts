// /proc readers for the footprint figures: CPU seconds (utime+stime) and RSS of one process, and
// the members of a process group.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "pid (comm) ": state is field 3, so index 0 here is field 3.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** utime + stime of the process itself (not its children), in seconds. */
export function cpuSeconds(pid: number): number {
  const f = statFields(pid);
  if (!f) return Number.NaN;
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // fields 14 and 15
}

/** VmRSS in MiB. */
export function rssMiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

export function processGroup(pid: number): number | undefined {
  const f = statFields(pid);
  return f && f[0] !== 'Z' ? Number(f[2]) : undefined;
}

export function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Live pids in process group `group` whose comm is `name` (any name when omitted). */
export function groupMembers(group: number, name?: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => processGroup(pid) === group && (name === undefined || comm(pid) === name));
}

export function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && processGroup(pid) !== undefined ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** utime+stime+cutime+cstime of one process (reaped children included), in seconds. */
function totalWithChildren(pid: number): number {
  const f = statFields(pid);
  if (!f) return 0;
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK; // fields 14-17
}

/**
 * CPU seconds used so far by every process of the given process groups: each live member's own
 * utime+stime, plus what the group leader has reaped (cutime+cstime), so processes that exited
 * (Postfix's smtpd after max_use, Dovecot's auth workers) still count.
 */
export function groupsCpuSeconds(groups: number[]): number {
  const wanted = new Set(groups);
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const f = statFields(pid);
    if (!f || !wanted.has(Number(f[2]))) continue;
    total += wanted.has(pid) ? totalWithChildren(pid) : (Number(f[11]) + Number(f[12])) / CLK_TCK;
  }
  return total;
}

/** RSS and PSS (MiB) of one process from /proc/PID/smaps_rollup; zeros once it is gone. */
export function memoryOf(pid: number): { rss: number; pss: number } {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) / 1024;
    return { rss: field('Rss'), pss: field('Pss') };
  } catch {
    return { rss: 0, pss: 0 };
  }
}

/** Summed RSS and PSS of the live members of the given process groups, with the process count. */
export function groupsMemory(groups: number[]): { rss: number; pss: number; processes: number } {
  const wanted = new Set(groups);
  const out = { rss: 0, pss: 0, processes: 0 };
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const group = processGroup(pid);
    if (group === undefined || !wanted.has(group)) continue;
    const m = memoryOf(pid);
    if (m.rss === 0) continue; // kernel thread or gone
    out.rss += m.rss;
    out.pss += m.pss;
    out.processes += 1;
  }
  return out;
}

/** Live pids whose command line mentions `text` (e.g. a STATE_DIR), this process excluded. */
export function pidsMentioning(text: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text) && statFields(pid)?.[0] !== 'Z';
      } catch {
        return false;
      }
    });
}
