// Watching /ready through an outage: polls back to back (one request at a time) and keeps every
// answer, so a test can assert that /ready said 503 while a daemon was down, and what it named.
export interface ReadyAnswer {
  at: number;
  /** HTTP status, or 0 when the request failed. */
  status: number;
  body?: { daemons?: Record<string, { state?: string; restarts?: number }>; checks?: Record<string, { ok?: boolean; error?: string; cause?: string }> };
}

export class ReadyWatch {
  readonly answers: ReadyAnswer[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(url: string) {
    this.loop = (async () => {
      while (this.running) {
        const at = Date.now();
        try {
          const response = await fetch(url, { signal: AbortSignal.timeout(3000) });
          const text = await response.text();
          let body: ReadyAnswer['body'];
          try {
            body = JSON.parse(text) as ReadyAnswer['body'];
          } catch {
            body = undefined;
          }
          this.answers.push({ at, status: response.status, ...(body ? { body } : {}) });
        } catch {
          this.answers.push({ at, status: 0 });
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    })();
  }

  async stop(): Promise<ReadyAnswer[]> {
    this.running = false;
    await this.loop;
    return this.answers;
  }
}
