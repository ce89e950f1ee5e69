// What an operation refuses, and why, in words the operator can act on. `usage` means the request
// itself is wrong (CLI exit 2, HTTP 400); `not_found` and `failed` mean it was fine but could not be
// done (exit 1; HTTP 404 / 409). A refused operation changes nothing.
export type OperationErrorKind = 'usage' | 'not_found' | 'failed';

export class OperationError extends Error {
  readonly kind: OperationErrorKind;
  constructor(kind: OperationErrorKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

export const usage = (message: string) => new OperationError('usage', message);
export const notFound = (message: string) => new OperationError('not_found', message);
export const failed = (message: string) => new OperationError('failed', message);

/** "90", "90s", "15m", "2h", "3d" → seconds. */
export function parseDuration(name: string, raw: string): number {
  const match = /^(\d+)\s*([smhd]?)$/.exec(raw.trim());
  if (!match) throw usage(`${name}: "${raw}" is not a duration; use a number of seconds or e.g. 90s, 15m, 2h, 3d`);
  return Number(match[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
}
