import { randomBytes, randomUUID } from "node:crypto";
import { isIP } from "node:net";
import {
  BackendError,
  InvalidArgumentError,
  withLocks,
  type ConnectionInfo,
  type ConnectorProps,
  type ExportSource,
  type Logger,
  type ModelUpdate,
  type Target,
  type TargetContext,
} from "@cinderts/core";
import {
  buildConnectionInfo,
  formatProviderAuth,
  formatProviderLocation,
  generateChap,
  parseProviderAuth,
  portalsOf,
  requireInitiator,
  secretsOf,
  targetIqn,
  type Portal,
} from "@cinderts/target-iscsi";
import type { LioConfig } from "./config.js";
import { lioArgv, type LioOp } from "./script.js";

/** LIO maps the volume as LUN 0 (Cinder's lioadm does the same). */
export const LIO_LUN = 0;
const PATH = /^\/[A-Za-z0-9._\/+-]+$/;

export interface LioExportState {
  /** Resolved configfs path of the storage object behind LUN 0. */
  storageObject?: string;
  acls: string[];
  /** Initiators with a session (explicit ACLs). */
  sessions: string[];
}

/** `"ip:port"` as LIO names portal directories (IPv6 in brackets). */
function npName(ip: string, port: number): string {
  return isIP(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/**
 * The kernel target (LIO) driven through configfs: each operation is ONE runner call of a fixed shell script
 * (mkdir/echo/ln under /sys/kernel/config/target) that also rewrites rtslib-fb's saveconfig.json, instead of
 * a targetcli/cinder-rtstool process per step (1.5–2.8 s of Python start-up each under TCG).
 */
export class LioTarget implements Target {
  readonly protocol = "iscsi";
  private readonly log: Logger;
  private readonly portals: Portal[];

  constructor(
    private readonly cfg: LioConfig,
    private readonly ctx: TargetContext,
  ) {
    this.log = ctx.logger.child({ target: "lio" });
    this.portals = portalsOf(cfg);
  }

  private script(op: LioOp, args: string[], opts: { secrets?: string[]; input?: string } = {}) {
    return this.ctx.runner.run(lioArgv(this.cfg.configfs, this.cfg.saveFile, op, args), {
      root: this.cfg.root,
      secrets: opts.secrets,
      input: opts.input ?? "",
    });
  }

  async setup(): Promise<void> {
    try {
      await this.ctx.runner.run(["test", "-d", this.cfg.configfs], { root: this.cfg.root });
    } catch (e) {
      throw new BackendError(`LIO is not available on ${this.ctx.runner.name}: ${this.cfg.configfs} is missing`, { cause: e });
    }
  }

  private iqnOf(source: ExportSource): string {
    return targetIqn(this.cfg.iqnPrefix, source.volume);
  }

  private locked<T>(iqn: string, fn: () => Promise<T>): Promise<T> {
    return withLocks(this.ctx.locks, [`target:${iqn}`], fn);
  }

  private async timed<T>(op: string, source: ExportSource, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      const r = await fn();
      this.log.info(op, { volumeId: source.volume.id, ms: Math.round(performance.now() - t0) });
      return r;
    } catch (e) {
      this.log.warn(`${op} failed`, { volumeId: source.volume.id, error: e });
      throw e;
    }
  }

  /** What configfs holds for this export (used by tests and by terminate/remove decisions). */
  async show(source: ExportSource): Promise<LioExportState> {
    const r = await this.script("show", [this.iqnOf(source)]);
    const state: LioExportState = { acls: [], sessions: [] };
    for (const line of r.stdout.split("\n")) {
      const [kind, a, b] = line.split("|");
      if (kind === "lun" && a === String(LIO_LUN)) state.storageObject = b;
      else if (kind === "acl" && a) state.acls.push(a);
      else if (kind === "session" && a) state.sessions.push(a);
    }
    return state;
  }

  private exportArgs(source: ExportSource, iqn: string): string[] {
    if (!PATH.test(source.path)) throw new InvalidArgumentError(`export path ${JSON.stringify(source.path)} is not a plain absolute path`);
    const bind = this.cfg.bindIp ? [{ ip: this.cfg.bindIp, port: this.cfg.bindPort ?? this.cfg.targetPort }] : this.portals;
    return [
      iqn, // storage object named after the IQN, as cinder-rtstool does
      source.path,
      String(source.sizeBytes),
      randomUUID(), // unit serial (the LUN's WWN), kept across restores by saveconfig
      iqn,
      this.cfg.chap ? "1" : "0",
      randomBytes(5).toString("hex"),
      ...bind.map((p) => npName(p.ip, p.port)),
    ];
  }

  async createExport(source: ExportSource, _connector: ConnectorProps): Promise<ModelUpdate> {
    const iqn = this.iqnOf(source);
    return this.timed("createExport", source, () =>
      this.locked(iqn, async () => {
        const auth = this.cfg.chap ? (parseProviderAuth(source.volume.provider_auth) ?? generateChap()) : undefined;
        await this.script("export", this.exportArgs(source, iqn));
        return {
          // LIO: Cinder writes the IQN where tgt has its numeric tid.
          provider_location: formatProviderLocation({ portals: this.portals, tid: iqn, iqn, lun: LIO_LUN }),
          provider_auth: auth ? formatProviderAuth(auth) : null,
        };
      }),
    );
  }

  async initializeConnection(source: ExportSource, connector: ConnectorProps): Promise<ConnectionInfo> {
    const initiator = requireInitiator(connector);
    const iqn = this.iqnOf(source);
    return this.timed("initializeConnection", source, () =>
      this.locked(iqn, async () => {
        const auth = this.cfg.chap ? parseProviderAuth(source.volume.provider_auth) : undefined;
        if (this.cfg.chap && !auth) {
          throw new BackendError(`volume ${source.volume.id} has no CHAP credentials: createExport first`, {
            resource: { kind: "volume", id: source.volume.id },
          });
        }
        // Idempotent: re-creates the export if the host lost it (restart without restore) before adding the ACL.
        await this.script("export", this.exportArgs(source, iqn));
        await this.script("allow", [iqn, initiator, auth ? "1" : "0", randomBytes(5).toString("hex")], {
          secrets: secretsOf(auth),
          input: auth ? `${auth.user}\n${auth.password}\n` : "",
        });
        return buildConnectionInfo({
          iqn,
          portals: this.portals,
          lun: LIO_LUN,
          volumeId: source.volume.id,
          auth,
          multipath: connector.multipath,
        });
      }),
    );
  }

  async terminateConnection(source: ExportSource, connector: ConnectorProps | undefined): Promise<void> {
    const iqn = this.iqnOf(source);
    const who = connector ? requireInitiator(connector) : "*";
    await this.timed("terminateConnection", source, () => this.locked(iqn, () => this.script("deny", [iqn, who]).then(() => undefined)));
  }

  async removeExport(source: ExportSource): Promise<void> {
    const iqn = this.iqnOf(source);
    await this.timed("removeExport", source, () => this.locked(iqn, () => this.script("remove", [iqn, iqn]).then(() => undefined)));
  }

  /** Block backstores follow the device size; the initiator sees it after a rescan. Nothing to do on the target. */
  async extendExport(_source: ExportSource): Promise<void> {}

  validateConnector(connector: ConnectorProps): void {
    requireInitiator(connector);
  }
}
