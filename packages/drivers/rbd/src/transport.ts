import { ConfigError, type DriverContext } from "@cinderts/core";
import { CliRbdClient } from "./cli-client.js";
import { RbdCallError, type RbdClient } from "./client.js";
import type { RbdConfigParsed } from "./config.js";

/** The optional in-process transport; a separate package because it builds a native addon against librbd. */
export const NATIVE_PACKAGE = "@cinderts/driver-rbd-native";

interface NativeModule {
  /** Connects to the cluster and returns a client, or throws. */
  openRbdClient(opts: {
    cluster: string;
    user: string;
    conf?: string;
    keyring?: string;
    connectTimeoutSec: number;
  }): Promise<RbdClient>;
  /** Why the addon is unusable (not built, librbd missing), or undefined when it loads. */
  nativeUnavailableReason(): string | undefined;
}

async function loadNative(): Promise<NativeModule | string> {
  const spec = NATIVE_PACKAGE;
  let mod: NativeModule;
  try {
    mod = (await import(spec)) as NativeModule;
  } catch (e) {
    return `${NATIVE_PACKAGE} is not installed (${(e as Error).message.split("\n")[0]})`;
  }
  return mod.nativeUnavailableReason() ?? mod;
}

/**
 * Picks how the driver talks to Ceph. librbd in-process answers in ~10-20 ms where one `rbd` process costs
 * ~60-90 ms of start-up; it is only possible when the Ceph client is this host (local runner).
 */
export async function makeRbdClient(cfg: RbdConfigParsed, ctx: DriverContext): Promise<RbdClient> {
  const args = {
    cluster: cfg.cluster,
    user: cfg.user,
    connectTimeoutSec: cfg.connectTimeoutSec,
    ...(cfg.conf ? { conf: cfg.conf } : {}),
    ...(cfg.keyring ? { keyring: cfg.keyring } : {}),
  };
  const cli = () => new CliRbdClient(ctx.runner, args, cfg.commandTimeoutSec * 1000);
  if (cfg.transport === "cli") return cli();
  const local = ctx.runner.name === "local";
  if (cfg.transport === "auto" && !local) return cli();
  const native = await loadNative();
  if (typeof native === "string") {
    if (cfg.transport === "native") throw new ConfigError(`transport native: ${native}`, { backend: ctx.backendName });
    ctx.logger.debug("rbd native transport unavailable, using the rbd CLI", { reason: native });
    return cli();
  }
  if (!local) throw new ConfigError("transport native needs the local runner (librbd runs in this process)", { backend: ctx.backendName });
  try {
    return withErrno(await native.openRbdClient(args));
  } catch (e) {
    throw withErrnoError(e, "connect");
  }
}

function withErrnoError(e: unknown, op: string): unknown {
  const errno = (e as { errno?: unknown } | undefined)?.errno;
  return typeof errno === "number" ? new RbdCallError(errno, op, (e as Error).message, { cause: e }) : e;
}

/** The addon reports librbd's errno on plain Errors; the driver maps RbdCallError the same for both transports. */
function withErrno(client: RbdClient): RbdClient {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== "function" || prop === "close") return typeof v === "function" ? v.bind(target) : v;
      return async (...a: unknown[]) => {
        try {
          return await (v as (...x: unknown[]) => Promise<unknown>).apply(target, a);
        } catch (e) {
          throw withErrnoError(e, String(prop));
        }
      };
    },
  });
}
