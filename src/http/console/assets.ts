// What the admin listener serves to a browser, and the policy that keeps it to this origin.
import { CONSOLE_CSS, INDEX_HTML } from './page.ts';
import { CONSOLE_JS } from './script.ts';

export const CONSOLE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export const CONSOLE_ASSETS: Record<string, { type: string; body: string }> = {
  '/': { type: 'text/html; charset=utf-8', body: INDEX_HTML },
  '/console.js': { type: 'text/javascript; charset=utf-8', body: CONSOLE_JS },
  '/console.css': { type: 'text/css; charset=utf-8', body: CONSOLE_CSS },
};
