// What is checked on the host before any daemon starts, beside the ports: every daemon user can
// reach STATE_DIR, and TRUSTED_NETWORKS does not trust the container's gateway.
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Config } from '../config/schema.ts';
import { defaultGateways, trustedGateways } from '../config/networks.ts';
import { MAILBOX_USER, userGroups } from './accounts.ts';

export interface HostProblem {
  event: 'state_dir_unreachable' | 'trusted_gateway';
  message: string;
}

/** The users the daemons drop to; each must be able to enter every directory above STATE_DIR. */
const DAEMON_USERS = ['postfix', 'dovecot', 'dovenull', MAILBOX_USER, 'opendkim', '_rspamd'];

interface Account {
  name: string;
  uid: number;
  gids: Set<number>;
}

/** The daemon users that exist here, with their primary and supplementary groups. */
function daemonAccounts(): Account[] {
  return DAEMON_USERS.flatMap((name) => {
    const account = userGroups(name);
    return account ? [{ name, ...account }] : [];
  });
}

/** Whether `account` may search (enter) a directory with this mode and owner. */
function canEnter(account: Account, mode: number, uid: number, gid: number): boolean {
  if (account.uid === uid) return (mode & 0o100) !== 0;
  if (account.gids.has(gid)) return (mode & 0o010) !== 0;
  return (mode & 0o001) !== 0;
}

/** Every existing directory above STATE_DIR (STATE_DIR itself is relaybox's, made with the right modes). */
function ancestors(stateDir: string): string[] {
  const found: string[] = [];
  for (let dir = dirname(resolve(stateDir)); ; dir = dirname(dir)) {
    found.push(dir);
    if (dir === dirname(dir)) return found;
  }
}

export function stateDirProblems(stateDir: string, accounts = daemonAccounts()): HostProblem[] {
  for (const dir of ancestors(stateDir)) {
    let stat;
    try {
      stat = statSync(dir);
    } catch {
      continue; // not there yet: relaybox creates it, searchable
    }
    const shut = accounts.filter((account) => !canEnter(account, stat.mode, stat.uid, stat.gid)).map((account) => account.name);
    if (shut.length === 0) continue;
    const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
    return [{
      event: 'state_dir_unreachable',
      message: `STATE_DIR=${stateDir}: ${dir} (mode ${mode}, owner uid ${stat.uid}) cannot be entered by the daemon user${shut.length > 1 ? 's' : ''} ${shut.join(', ')}, so ${shut.length > 1 ? 'they' : 'it'} could not reach ${shut.length > 1 ? 'their' : 'its'} files and sockets under STATE_DIR. Put STATE_DIR under a directory others may enter (e.g. /var/lib/relaybox), or allow it: chmod o+x ${dir}`,
    }];
  }
  return [];
}

export function gatewayProblems(config: Pick<Config, 'trustedNetworks' | 'trustedGatewayAllowed'>, gateways = defaultGateways()): HostProblem[] {
  if (config.trustedGatewayAllowed) return [];
  return trustedGateways(config.trustedNetworks, gateways).map((gateway) => ({
    event: 'trusted_gateway',
    message: `TRUSTED_NETWORKS contains ${gateway}, this container's default gateway: behind Docker's userland proxy every Internet client arrives from it, and port 25 would relay for all of them without AUTH (an open relay). Remove it from TRUSTED_NETWORKS, or set TRUSTED_NETWORKS_INCLUDE_GATEWAY=yes if your clients reach relaybox by NAT or routing that keeps their own addresses`,
  }));
}

/** The gateways TRUSTED_NETWORKS trusts although TRUSTED_NETWORKS_INCLUDE_GATEWAY=yes allowed it (warned at every start). */
export function allowedTrustedGateways(config: Pick<Config, 'trustedNetworks' | 'trustedGatewayAllowed'>, gateways = defaultGateways()): string[] {
  return config.trustedGatewayAllowed ? trustedGateways(config.trustedNetworks, gateways) : [];
}

export function hostProblems(config: Config): HostProblem[] {
  return [...stateDirProblems(config.stateDir), ...gatewayProblems(config)];
}
