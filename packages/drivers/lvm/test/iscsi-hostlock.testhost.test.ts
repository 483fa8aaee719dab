/**
 * The host-wide iSCSI lock of @cinderts/connector-iscsi (`iscsi-host:<runner>`), shown on the test host: two
 * connector instances — each with its own SSH connection and its own SQLite persistence opened on ONE database
 * file, as two cinderts processes on one host would have — attach two volumes at the same time and then detach
 * them at the same time. Every iscsiadm command each instance sends is recorded (start and end, in the order this
 * process saw them); the commands of one attach (node set-up, CHAP, login, rescan) must all lie outside the
 * other's, and so must those of the detaches (logout, node delete). Without the lock both instances start with
 * `iscsiadm -m node` at once and the windows overlap.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  importPlugin,
  maskSecrets,
  silentLogger,
  type Backend,
  type Cinderts,
  type CommandRunner,
  type ConnectionRecord,
  type HostConnector,
  type Persistence,
  type RunOptions,
  type RunResult,
} from "@cinderts/core";
import { runnerIo, targetContext } from "@cinderts/testkit";
import iscsi from "@cinderts/connector-iscsi";
import { openThinLioHarness, prepareTesthost, removeVolumes, sshRunnerInstance, testhost, VG } from "./testhost.js";

const REPO = fileURLToPath(new URL("../../../../", import.meta.url));

interface Event {
  who: string;
  edge: "start" | "end";
  argv: string[];
  /** Was the host lock's row in the shared SQLite table when the command started? */
  lockRow?: boolean;
}

/** Delegates to an SSH runner under the same name (the lock key is derived from it) and records every iscsiadm command. */
class TimelineRunner implements CommandRunner {
  readonly name: string;
  constructor(
    private readonly inner: CommandRunner,
    private readonly who: string,
    private readonly events: Event[],
    private readonly lockHeld: () => boolean,
  ) {
    this.name = inner.name;
  }
  async run(argv: readonly string[], opts?: RunOptions): Promise<RunResult> {
    if (argv[0] !== "iscsiadm") return this.inner.run(argv, opts);
    const shown = argv.map((a) => maskSecrets(a, opts?.secrets ?? []));
    this.events.push({ who: this.who, edge: "start", argv: shown, lockRow: this.lockHeld() });
    try {
      return await this.inner.run(argv, opts);
    } finally {
      this.events.push({ who: this.who, edge: "end", argv: shown });
    }
  }
  close(): Promise<void> {
    return this.inner.close?.() ?? Promise.resolve();
  }
}

/** Index of the first start and the last end of one instance's commands in the shared event list. */
function windowOf(events: Event[], who: string): { first: number; last: number } {
  const idx = events.flatMap((e, i) => (e.who === who ? [i] : []));
  return { first: idx[0]!, last: idx[idx.length - 1]! };
}

describe.skipIf(!testhost)("host-wide iSCSI lock across two connector instances sharing one SQLite lock table (test host)", () => {
  const runner = testhost ? sshRunnerInstance() : undefined;
  const io = runner ? runnerIo(runner) : undefined;
  const dir = mkdtempSync(join(tmpdir(), "cinderts-hostlock-"));
  let ct: Cinderts;
  let backend: Backend;
  const stores: Persistence[] = [];
  const runners: CommandRunner[] = [];
  const volumes: string[] = [];
  const events: Event[] = [];

  beforeAll(async () => {
    await prepareTesthost(runner!);
    ct = await openThinLioHarness();
    backend = ct.backend("contract");
  }, 300_000);

  afterAll(async () => {
    await removeVolumes(backend, volumes);
    await ct?.close();
    for (const s of stores) await s.close().catch(() => undefined);
    for (const r of runners) await r.close?.().catch(() => undefined);
    await runner?.close?.();
    rmSync(dir, { recursive: true, force: true });
  }, 600_000);

  /** One "process": its own SQLite persistence on the shared file, its own SSH connection, its own connector. */
  async function instance(who: string): Promise<HostConnector> {
    const sqlite = await importPlugin(join(REPO, "packages/persistence/sqlite"), "persistence");
    const store = sqlite.create(sqlite.configSchema.parse({ path: join(dir, "cinderts.db") }), { logger: silentLogger, baseDir: dir });
    await store.init();
    stores.push(store);
    const ssh = sshRunnerInstance();
    const key = `iscsi-host:${ssh.name}`;
    // The row of the lock as any process would see it in the shared file (SqliteLockManager.holder).
    const holder = store.locks as unknown as { holder(key: string): unknown };
    const recorded = new TimelineRunner(ssh, who, events, () => holder.holder(key) !== undefined);
    runners.push(recorded);
    return iscsi.create(iscsi.configSchema.parse({ method: "kernel" }), { ...targetContext(recorded), locks: store.locks! });
  }

  it(
    "two concurrent attaches (and then detaches) of two volumes never interleave their iscsiadm login/logout commands",
    async () => {
      const [a, b] = [await instance("A"), await instance("B")];
      const props = await ct.connectorProperties();
      const conns: ConnectionRecord[] = [];
      for (const name of ["lock-a", "lock-b"]) {
        const vol = await backend.createVolume({ size: 1, name });
        volumes.push(vol.id);
        conns.push(await backend.connect({ volume_id: vol.id, connector: props }));
      }
      const [ca, cb] = conns as [ConnectionRecord, ConnectionRecord];

      const [attA, attB] = await Promise.all([a.connectVolume(ca.conn_info!), b.connectVolume(cb.conn_info!)]);
      const attachEvents = events.splice(0);
      expect(attA.path).toMatch(/^\/dev\/sd[a-z]+$/);
      expect(attB.path).toMatch(/^\/dev\/sd[a-z]+$/);
      expect(attA.path).not.toBe(attB.path);
      // Each attach reached its own volume: what goes in at the attached disk comes out of that volume's LV.
      for (const [att, conn] of [[attA, ca], [attB, cb]] as const) {
        const mark = Buffer.from(`volume ${conn.volume_id} `.repeat(200).slice(0, 4096));
        await io!.write(att.path, 0, mark);
        expect((await io!.read(`/dev/${VG}/volume-${conn.volume_id}`, 0, mark.length)).equals(mark)).toBe(true);
      }

      const [detA, detB] = [a.disconnectVolume(ca.conn_info!, attA), b.disconnectVolume(cb.conn_info!, attB)];
      await Promise.all([detA, detB]);
      const detachEvents = events.splice(0);

      for (const [phase, evs, verb] of [["attach", attachEvents, "--login"], ["detach", detachEvents, "--logout"]] as const) {
        // Both instances did real login/logout work …
        for (const who of ["A", "B"]) expect(evs.some((e) => e.who === who && e.edge === "start" && e.argv.includes(verb)), `${phase} ${who} ran ${verb}`).toBe(true);
        // … strictly one after the other …
        const wa = windowOf(evs, "A");
        const wb = windowOf(evs, "B");
        const order = evs.map((e) => `${e.who} ${e.edge}: ${e.argv.slice(1).join(" ")}`);
        expect(wa.last < wb.first || wb.last < wa.first, `${phase} commands interleave:\n${order.join("\n")}`).toBe(true);
        // … each holding the lock row in the shared SQLite file while its commands ran.
        expect(evs.filter((e) => e.edge === "start").every((e) => e.lockRow), `${phase}: an iscsiadm command ran without the lock row`).toBe(true);
      }

      const sessions = (await runner!.run(["iscsiadm", "-m", "session"], { root: true, okExitCodes: [0, 21] })).stdout;
      for (const c of conns) expect(sessions).not.toContain((c.conn_info!.data as { target_iqn: string }).target_iqn);

      for (const c of conns) await backend.disconnect(c.id);
      for (const id of volumes.splice(0)) await backend.deleteVolume(id);
    },
    1_200_000,
  );
});
