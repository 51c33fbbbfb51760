// The agent's one SQLite file: outbox, staged samples, counters and small state (credential).
import { Database, type Statement } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Outbox } from "../../shared/link/index.ts";
import { Downsampler, LOW_WATER } from "./downsample.ts";

/** Opens DIR/agent.db (WAL, synchronous=NORMAL: survives kill -9 at any moment). */
export class AgentStore {
  readonly db: Database;
  readonly outbox: Outbox;
  readonly path: string;
  /** Largest metrics batch body written (the hub refuses larger frames); larger runs are split. */
  readonly maxBodyBytes: number;
  /** The overflow policy's first step: fine metrics become 1-minute rollups before anything is dropped. */
  readonly downsampler: Downsampler;
  readonly #getState: Statement;
  readonly #setState: Statement;

  constructor(dataDir: string, opts: { bufferBytes: number; maxBodyBytes?: number }) {
    mkdirSync(dataDir, { recursive: true, mode: 0o750 });
    this.path = join(dataDir, "agent.db");
    this.db = new Database(this.path, { create: true, strict: true });
    // auto_vacuum must come before WAL: switching to WAL writes the header, after which it is fixed.
    this.db.run("PRAGMA auto_vacuum = INCREMENTAL");
    this.db.run("PRAGMA journal_mode = WAL");
    this.db.run("PRAGMA synchronous = NORMAL");
    this.db.run("PRAGMA busy_timeout = 5000");
    // Keep the WAL from growing without bound between checkpoints; the byte budget covers the rest.
    this.db.run("PRAGMA journal_size_limit = 4194304");
    this.db.run("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
    this.maxBodyBytes = opts.maxBodyBytes ?? 900 * 1024;
    this.downsampler = new Downsampler({ maxBodyBytes: this.maxBodyBytes });
    this.outbox = new Outbox(this.db, {
      budgetBytes: opts.bufferBytes,
      relieve: (outbox, budget) => this.downsampler.run(outbox, Math.floor(budget * LOW_WATER)),
    });
    this.#getState = this.db.query("SELECT value FROM state WHERE key = ?");
    this.#setState = this.db.query(
      "INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    );
  }

  getState(key: string): string | undefined {
    return (this.#getState.get(key) as { value: string } | null)?.value;
  }

  setState(key: string, value: string): void {
    this.#setState.run(key, value);
  }

  /** Gives freed pages back to the file system (after large drops or acks). */
  reclaim(): void {
    this.db.run("PRAGMA incremental_vacuum");
  }

  close(): void {
    try {
      this.db.run("PRAGMA wal_checkpoint(TRUNCATE)");
    } finally {
      this.db.close();
    }
  }
}
