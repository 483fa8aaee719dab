import {
  BackendError,
  InvalidArgumentError,
  isStorageError,
  withLocks,
  type ConnectionInfo,
  type ConnectorProps,
  type ExportSource,
  type Logger,
  type ModelUpdate,
  type RunResult,
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
  volumeName,
  type ChapCredentials,
  type Portal,
} from "@cinderts/target-iscsi";
import type { TgtConfig } from "./config.js";
import { parseShowTarget, Tgtadm, type TgtTargetState } from "./tgtadm.js";

/** tgt reserves LUN 0 for its controller; the volume is LUN 1 (as in Cinder's tgt helper). */
export const TGT_LUN = 1;
const PATH = /^\/[A-Za-z0-9._\/+-]+$/;
/** The broadcast address: never the source of a login, so as an address ACL it admits nobody. */
const NO_ADDRESS = "255.255.255.255/32";
const isIqnAcl = (a: string): boolean => /^(iqn|eui|naa)\./.test(a);

// Atomic replace so a crash never leaves tgtd a half-written fragment; umask keeps the CHAP secret private.
const WRITE_FILE = 'umask 077 && cat > "$1.tmp" && mv -f "$1.tmp" "$1"';

function stderrOf(e: unknown): string {
  if (isStorageError(e)) return String((e.details.data as { stderr?: string } | undefined)?.stderr ?? e.message);
  return e instanceof Error ? e.message : String(e);
}

/**
 * tgt (user-space target) helper. Live changes go through tgtadm (2–9 ms each); the configuration is also
 * written as a targets.conf fragment per volume so that a tgtd restart restores it (`tgt-admin -e`).
 * Target ids are taken optimistically (highest + 1, retry on "already exists"), so concurrent processes never
 * need a global lock — only `target:<iqn>` for the one target being changed.
 */
export class TgtTarget implements Target {
  readonly protocol = "iscsi";
  private readonly adm: Tgtadm;
  private readonly log: Logger;
  private readonly portals: Portal[];

  constructor(
    private readonly cfg: TgtConfig,
    private readonly ctx: TargetContext,
  ) {
    this.adm = new Tgtadm(cfg.controlPort);
    this.log = ctx.logger.child({ target: "tgt" });
    this.portals = portalsOf(cfg);
  }

  private run(argv: string[], secrets: string[] = [], input?: string): Promise<RunResult> {
    return this.ctx.runner.run(argv, { root: this.cfg.root, secrets, input });
  }

  async setup(): Promise<void> {
    try {
      await this.run(this.adm.system());
    } catch (e) {
      throw new BackendError(`tgtd is not reachable${this.cfg.controlPort === undefined ? "" : ` on control port ${this.cfg.controlPort}`}`, {
        cause: e,
        retryable: true,
      });
    }
    if (this.cfg.confDir) await this.run(["mkdir", "-p", "-m", "0700", this.cfg.confDir]);
  }

  async targets(): Promise<Map<string, TgtTargetState>> {
    const r = await this.run(this.adm.show());
    return parseShowTarget(r.stdout);
  }

  private iqnOf(source: ExportSource): string {
    return targetIqn(this.cfg.iqnPrefix, source.volume);
  }

  private checkPath(path: string): void {
    if (!PATH.test(path)) throw new InvalidArgumentError(`export path ${JSON.stringify(path)} is not a plain absolute path`);
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

  private locked<T>(iqn: string, fn: () => Promise<T>): Promise<T> {
    return withLocks(this.ctx.locks, [`target:${iqn}`], fn);
  }

  async createExport(source: ExportSource, _connector: ConnectorProps): Promise<ModelUpdate> {
    return this.timed("createExport", source, () => this.locked(this.iqnOf(source), () => this.ensureExport(source)));
  }

  /** Creates what is missing of target, LUN 1, CHAP account and the fragment. Caller holds target:<iqn>. */
  private async ensureExport(source: ExportSource): Promise<ModelUpdate> {
    this.checkPath(source.path);
    const iqn = this.iqnOf(source);
    const auth = this.cfg.chap ? (parseProviderAuth(source.volume.provider_auth) ?? generateChap()) : undefined;
    let state = (await this.targets()).get(iqn);
    if (!state) state = await this.newTarget(iqn);
    const tid = state.tid;
    const lun = state.luns.find((l) => l.lun === TGT_LUN);
    if (lun && lun.path !== source.path) {
      throw new BackendError(`target ${iqn} exports ${lun.path ?? "nothing"} as LUN ${TGT_LUN}, not ${source.path}`, {
        resource: { kind: "target", id: iqn },
      });
    }
    if (!lun) await this.run(this.adm.newLun(tid, TGT_LUN, source.path, this.cfg.bsType));
    if (auth && !state.accounts.includes(auth.user)) {
      await this.ignoring(this.run(this.adm.newAccount(auth.user, auth.password), secretsOf(auth)), "this account already exists");
      await this.run(this.adm.bindAccount(tid, auth.user));
    }
    if (!this.cfg.aclByInitiator && !state.acls.includes("ALL")) await this.run(this.adm.bindAddress(tid, "ALL"));
    await this.writeFragment(source, iqn, auth, this.cfg.aclByInitiator ? state.acls : ["ALL"]);
    return {
      provider_location: formatProviderLocation({ portals: this.portals, tid: String(tid), iqn, lun: TGT_LUN }),
      provider_auth: auth ? formatProviderAuth(auth) : null,
    };
  }

  private async newTarget(iqn: string): Promise<TgtTargetState> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const all = await this.targets();
      const existing = all.get(iqn);
      if (existing) return existing;
      const tid = Math.max(0, ...[...all.values()].map((t) => t.tid)) + 1;
      try {
        await this.run(this.adm.newTarget(tid, iqn));
        return { tid, iqn, luns: [], accounts: [], acls: [], sessions: [] };
      } catch (e) {
        // Another process took this tid (or created our IQN) between show and new: look again.
        if (!/already exists/.test(stderrOf(e))) throw new BackendError(`tgtadm could not create target ${iqn}`, { cause: e });
      }
    }
    throw new BackendError(`could not allocate a tgt target id for ${iqn}: too much contention`, { retryable: true });
  }

  private async ignoring(p: Promise<unknown>, message: string): Promise<void> {
    try {
      await p;
    } catch (e) {
      if (!stderrOf(e).includes(message)) throw e;
    }
  }

  private fragmentPath(source: ExportSource): string | undefined {
    return this.cfg.confDir ? `${this.cfg.confDir}/${volumeName(source.volume)}.conf` : undefined;
  }

  /** targets.conf syntax as tgt-admin reads it; the backing path and names are validated, so no quoting is needed. */
  private async writeFragment(source: ExportSource, iqn: string, auth: ChapCredentials | undefined, acls: readonly string[]): Promise<void> {
    const file = this.fragmentPath(source);
    if (!file) return;
    const lines = [
      `# written by @cinderts/target-tgt for volume ${source.volume.id}; restored by tgt-admin -e`,
      `<target ${iqn}>`,
      `\tbacking-store ${source.path}`,
      ...(this.cfg.bsType ? [`\tbs-type ${this.cfg.bsType}`] : []),
      ...(auth ? [`\tincominguser ${auth.user} ${auth.password}`] : []),
      ...(this.cfg.aclByInitiator
        ? // Without any initiator-address line tgt-admin adds "-I ALL" on restore, which would admit every initiator:
          // an address no initiator can have keeps the IQN list the only way in.
          [`\tinitiator-address ${NO_ADDRESS}`, ...acls.filter(isIqnAcl).map((a) => `\tinitiator-name ${a}`)]
        : ["\tinitiator-address ALL"]),
      `</target>`,
      "",
    ];
    await this.run(["sh", "-c", WRITE_FILE, "sh", file], secretsOf(auth), lines.join("\n"));
  }

  async initializeConnection(source: ExportSource, connector: ConnectorProps): Promise<ConnectionInfo> {
    const initiator = requireInitiator(connector);
    const iqn = this.iqnOf(source);
    return this.timed("initializeConnection", source, () =>
      this.locked(iqn, async () => {
        // Re-creates the export if tgtd lost it (restart without restore): the records are the truth.
        const model = await this.ensureExport(source);
        const auth = parseProviderAuth(model.provider_auth);
        if (this.cfg.aclByInitiator) {
          const state = (await this.targets()).get(iqn);
          if (!state) throw new BackendError(`target ${iqn} vanished`, { retryable: true });
          if (!state.acls.includes(initiator)) {
            await this.ignoring(this.run(this.adm.bindInitiator(state.tid, initiator)), "already exists");
            await this.writeFragment(source, iqn, auth, [...state.acls, initiator]);
          }
        }
        return buildConnectionInfo({
          iqn,
          portals: this.portals,
          lun: TGT_LUN,
          volumeId: source.volume.id,
          auth,
          multipath: connector.multipath,
        });
      }),
    );
  }

  async terminateConnection(source: ExportSource, connector: ConnectorProps | undefined): Promise<void> {
    if (!this.cfg.aclByInitiator) return;
    const iqn = this.iqnOf(source);
    await this.timed("terminateConnection", source, () =>
      this.locked(iqn, async () => {
        const state = (await this.targets()).get(iqn);
        if (!state) return;
        const drop = connector ? state.acls.filter((a) => a === requireInitiator(connector)) : state.acls.filter(isIqnAcl);
        for (const a of drop) await this.ignoring(this.run(this.adm.unbindInitiator(state.tid, a)), "does not exist");
        if (drop.length) {
          const auth = parseProviderAuth(source.volume.provider_auth);
          await this.writeFragment(source, iqn, auth, state.acls.filter((a) => !drop.includes(a)));
        }
      }),
    );
  }

  async removeExport(source: ExportSource): Promise<void> {
    const iqn = this.iqnOf(source);
    await this.timed("removeExport", source, () =>
      this.locked(iqn, async () => {
        const state = (await this.targets()).get(iqn);
        if (state) {
          // --force: the caller decided the export goes; an initiator that still has a session loses it.
          await this.ignoring(this.run(this.adm.deleteTarget(state.tid, true)), "can't find the target");
          for (const user of state.accounts) await this.ignoring(this.run(this.adm.deleteAccount(user)), "can't find the account");
        }
        const file = this.fragmentPath(source);
        if (file) await this.run(["rm", "-f", file]);
      }),
    );
  }

  /** tgt reads the size only when a LUN is created: delete and re-create LUN 1 (works with sessions open). */
  async extendExport(source: ExportSource): Promise<void> {
    this.checkPath(source.path);
    const iqn = this.iqnOf(source);
    await this.timed("extendExport", source, () =>
      this.locked(iqn, async () => {
        const state = (await this.targets()).get(iqn);
        if (!state?.luns.some((l) => l.lun === TGT_LUN)) return;
        await this.run(this.adm.deleteLun(state.tid, TGT_LUN));
        await this.run(this.adm.newLun(state.tid, TGT_LUN, source.path, this.cfg.bsType));
      }),
    );
  }

  validateConnector(connector: ConnectorProps): void {
    requireInitiator(connector);
  }
}
