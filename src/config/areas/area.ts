// What each area of the environment (identity, mailboxes, upstream, ...) provides to the schema:
// its variables, the checks across them, and its part of the Config.
import type { z } from 'zod';

/** The parsed values of a set of variables. */
export type Values<Variables extends z.ZodRawShape> = z.output<z.ZodObject<Variables>>;

/** Reports a problem with one variable; `input` is shown unless the variable is secret. */
export type Issue = (variable: string, message: string, input?: string) => void;

/** Both forms of a setting (VALUE and VALUE_FILE) given at once is an error. */
export function eitherOr(env: Record<string, unknown>, issue: Issue, direct: string, file: string): void {
  if (env[direct] && env[file]) issue(file, `set either ${direct} or ${file}, not both`);
}
