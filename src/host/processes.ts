// Process-group and socket facts read from /proc (what `ps` and `ss -ltnp` show), no extra tools.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

function pids(): number[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number);
}

/** Process group of a pid, or undefined when it is gone (field 5 of /proc/PID/stat). */
export function processGroup(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : Number(fields[2]);
  } catch {
    return undefined;
  }
}

/** Live (non-zombie) members of the given process groups. */
export function groupMembers(groups: Iterable<number>): number[] {
  const wanted = new Set(groups);
  if (wanted.size === 0) return [];
  return pids().filter((pid) => {
    const group = processGroup(pid);
    return group !== undefined && wanted.has(group);
  });
}

/** The command line of a process, shortened (comm alone can be a thread name such as MainThread). */
export function commandName(pid: number): string {
  try {
    const line = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    const text = line || readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  } catch {
    return '?';
  }
}

/** Socket inodes listening on a TCP port (any address), from /proc/net/tcp and tcp6. */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const row of text.split('\n').slice(1)) {
      const cols = row.trim().split(/\s+/);
      const local = cols[1];
      if (!local || cols[3] !== '0A') continue; // 0A = LISTEN
      if (parseInt(local.split(':')[1] ?? '', 16) === port && cols[9]) inodes.add(cols[9]);
    }
  }
  return inodes;
}

/** Which process holds a listening TCP port, as `ss -ltnp` would tell. */
export function portHolder(port: number): { pid: number; command: string } | undefined {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return undefined;
  for (const pid of pids()) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
        if (inode && inodes.has(inode)) return { pid, command: commandName(pid) };
      } catch {
        // the fd closed while we looked
      }
    }
  }
  return undefined;
}

/** The working directory of a process, or undefined when it is gone. */
export function workingDirectory(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined;
  }
}
