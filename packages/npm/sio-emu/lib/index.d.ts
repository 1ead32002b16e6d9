/** Options of `start()`; each maps to a `sio-emu serve` flag. */
export interface StartOptions {
  /** Hubs to declare (`--hub`, repeated). */
  hubs?: string[];
  /** Event handler URL template (`{hub}`, `{event}`), or `builtin:echo` / `builtin:chat`. */
  webhook?: string;
  /** Accept clients without an access token (`--anonymous`). */
  anonymous?: boolean;
  /** Listen port; 0 (the default) picks a free one. */
  port?: number;
  /** Key that signs and verifies tokens and webhook signatures (`--access-key`). */
  accessKey?: string;
  /** TOML configuration file (`--config`). */
  config?: string;
  /** Session file to append every hop to (`--record`). */
  record?: string;
  /** Any other `serve` flags, appended as given. */
  args?: string[];
  /** Extra environment variables for the `serve` process. */
  env?: Record<string, string>;
  /** Called with every live-log line after the ready line (parsed JSON). */
  log?: (line: LogLine) => void;
  /** How long to wait for the ready line before giving up (ms, default 30000). */
  readyTimeout?: number;
}

/** A line of `serve --format json` output. */
export interface LogLine {
  type: string;
  [key: string]: unknown;
}

/** `serve`'s ready line, as printed. */
export interface ReadyLine extends LogLine {
  type: "ready";
  endpoint: string;
  connectionString: string;
  port: number;
  hubs: string[];
  webhook: string | null;
  anonymous: boolean;
  clientPath: string;
  inspector: string;
  token: string;
  version: string;
}

export interface TokenOptions {
  /** The hub (default: the first declared hub, or `hub`). */
  hub?: string;
  /** The user id (`sub` claim). */
  userId?: string;
  /** Groups the client joins on connect. */
  groups?: string[];
  /** `role` claim values. */
  roles?: string[];
  /** Lifetime in minutes (default 60). */
  minutes?: number;
}

/** A running `sio-emu serve`. */
export interface Emulator {
  /** `http://localhost:<port>`: the Socket.IO URL (plus the namespace) and the REST endpoint. */
  endpoint: string;
  port: number;
  /** `Endpoint=…;AccessKey=…;Version=1.0;`, for the Azure SDKs and the Functions extension. */
  connectionString: string;
  /** The web inspector's URL (`<endpoint>/_emu/`). */
  inspector: string;
  /** The declared hubs. */
  hubs: string[];
  /** The `serve` process id. */
  pid: number;
  /** The whole ready line. */
  ready: ReadyLine;
  /** The Socket.IO client `path` of a hub: `/clients/socketio/hubs/<hub>`. */
  clientPath(hub?: string): string;
  /** A client access token for this service (minted by `sio-emu token`). */
  token(options?: TokenOptions): string;
  /** Sends SIGTERM and waits for the exit; rejects when `serve` did not exit 0. */
  stop(): Promise<void>;
}

/** An Error from `serve`: `message` is its own error line. */
export interface ServeError extends Error {
  hint?: string;
  stderr?: string;
  exitCode?: number | null;
  signal?: string | null;
}

/**
 * Starts `sio-emu serve` and resolves once it is listening; rejects with `serve`'s own error
 * line (a {@link ServeError}) when it cannot start.
 */
export function start(options?: StartOptions): Promise<Emulator>;

/** The path of the `sio-emu` binary this package runs (`SIO_EMU_BINARY` wins). */
export function binaryPath(): string;

declare const sioEmu: { start: typeof start; binaryPath: typeof binaryPath };
export default sioEmu;
