import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { afterAll, describe, expect, it } from "vitest";
import { parseConfig, type AttachInfo, type CommandRunner, type RunResult } from "@cinderts/core";
import { RbdConnector, RbdConnectorConfig } from "../src/index.js";
import { ceph, connectorContext, GiB, testImage } from "./fixture.js";

const cfgOf = (o: Record<string, unknown> = {}) => parseConfig(RbdConnectorConfig, o, { what: "options" });
const mounted = (p: string) => execFileSync("cat", ["/proc/self/mountinfo"], { encoding: "utf8" }).includes(` ${p} `);

describe("method choice", () => {
  it("picks the best method this host has and refuses one it lacks", async () => {
    const c = new RbdConnector(cfgOf(), await connectorContext());
    const available = c.availableMethods();
    // kernel rbd first, then rbd-nbd, then the user-space daemon
    const order = ["krbd", "rbd-nbd", "qemu-storage-daemon"];
    expect([...available].sort((a, b) => order.indexOf(a) - order.indexOf(b))).toEqual(available);
    if (available.length) expect(c.chooseMethod()).toBe(available[0]);
    if (!existsSync("/sys/bus/rbd")) {
      const k = new RbdConnector(cfgOf({ method: "krbd" }), await connectorContext());
      expect(() => k.chooseMethod()).toThrow(/krbd is not available/);
    }
  });

  it("rejects connection info of another protocol or with a bad image spec", async () => {
    const c = new RbdConnector(cfgOf(), await connectorContext());
    await expect(c.connectVolume({ driver_volume_type: "iscsi", data: {} })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(
      c.connectVolume({ driver_volume_type: "rbd", data: { name: "volumes/x@snap", hosts: ["127.0.0.1"], ports: ["6789"] } }),
    ).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });
});

class Recorder implements CommandRunner {
  readonly name = "local";
  readonly calls: string[][] = [];
  constructor(private readonly stdout: string) {}
  async run(argv: readonly string[]): Promise<RunResult> {
    this.calls.push([...argv]);
    return { stdout: this.stdout, stderr: "", exitCode: 0 };
  }
}

describe("kernel methods (argv; the kernel here has neither rbd nor nbd)", () => {
  const connInfo = {
    driver_volume_type: "rbd",
    data: { name: "volumes/volume-1", hosts: ["10.0.0.1", "::1"], ports: ["6789", "6790"], auth_username: "cinder", keyring: "[client.cinder]\n\tkey = AQBX==\n" },
  };

  it("krbd: rbd device map with a generated conf holding mon_host and the keyring", async () => {
    const runner = new Recorder("/dev/rbd3\n");
    const ctx = { ...(await connectorContext()), runner };
    const c = new RbdConnector(cfgOf(), ctx);
    c.availableMethods = () => ["krbd"];
    const a = await c.connectVolume(connInfo);
    const conf = a.handle.conf as string;
    expect(runner.calls).toEqual([["rbd", "device", "map", "--pool", "volumes", "--image", "volume-1", "--id", "cinder", "--conf", conf]]);
    expect(a).toMatchObject({ method: "krbd", path: "/dev/rbd3", handle: { device: "/dev/rbd3" } });
    const text = await readFile(conf, "utf8");
    expect(text).toContain("mon_host = 10.0.0.1:6789,[::1]:6790");
    expect(text).toContain("key = AQBX==");
    expect(statSync(conf).mode & 0o777).toBe(0o600);
    // the secret never lands in what is persisted
    expect(JSON.stringify(a)).not.toContain("AQBX");
  });

  it("rbd-nbd: rbd-nbd map pool/image", async () => {
    const runner = new Recorder("/dev/nbd0\n");
    const c = new RbdConnector(cfgOf(), { ...(await connectorContext()), runner });
    c.availableMethods = () => ["rbd-nbd"];
    const a = await c.connectVolume(connInfo);
    expect(runner.calls).toEqual([["rbd-nbd", "map", "volumes/volume-1", "--id", "cinder", "--conf", a.handle.conf as string]]);
    expect(a).toMatchObject({ method: "rbd-nbd", path: "/dev/nbd0" });
  });
});

describe.skipIf(!ceph)("qemu-storage-daemon attach on the Ceph testbed", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const f of cleanups.reverse()) await f().catch(() => undefined);
  });

  it("auto picks qemu-storage-daemon here; the keyring from connection info is used and not persisted", async () => {
    const keyring = await readFile(ceph!.CINDERTS_CEPH_KEYRING, "utf8");
    const { connInfo, remove } = await testImage(1, { keyring });
    cleanups.push(remove);
    const c = new RbdConnector(cfgOf(), await connectorContext());
    const a = await c.connectVolume(connInfo);
    cleanups.push(() => c.disconnectVolume(connInfo, a, { force: true }));
    if (!existsSync("/sys/bus/rbd")) expect(a.method).toBe("qemu-storage-daemon");
    expect(statSync(a.path).size).toBe(GiB);
    expect(JSON.stringify(a)).not.toContain(keyring.match(/key = (\S+)/)![1]);
    await c.disconnectVolume(connInfo, a);
    expect(existsSync(a.handle.dir as string)).toBe(false);
  });

  it("detach after a restart and after the daemon died: nothing is left mounted or running", async () => {
    const { connInfo, remove } = await testImage(1);
    cleanups.push(remove);
    const ctx = await connectorContext();
    const cfg = cfgOf({ method: "qemu-storage-daemon", keyring: ceph!.CINDERTS_CEPH_KEYRING });
    const a = await new RbdConnector(cfg, ctx).connectVolume(connInfo);
    const persisted = JSON.parse(JSON.stringify(a)) as AttachInfo;
    const pid = persisted.handle.pid as number;

    // a new connector object knows the attach only from the persisted record
    const later = new RbdConnector(cfg, ctx);
    expect(await later.checkAttached(persisted)).toBe(true);
    process.kill(pid, "SIGKILL"); // the daemon crashes: its FUSE mount stays behind, dead
    for (let i = 0; i < 50 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 50));
    expect(mounted(persisted.path)).toBe(true);
    expect(await later.checkAttached(persisted)).toBe(false);
    await later.disconnectVolume(connInfo, persisted);
    expect(mounted(persisted.path)).toBe(false);
    expect(existsSync(persisted.handle.dir as string)).toBe(false);
    await later.disconnectVolume(connInfo, persisted);
  });
});
