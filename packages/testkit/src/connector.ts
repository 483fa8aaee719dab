import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AttachInfo, ConnectionInfo, HostConnector } from "@cinderts/core";
import { localIo, type AttachedIo } from "./driver.js";

/** What a connector contract needs: a connector and a real exported volume it can attach. */
export interface ConnectorFixture {
  connector: HostConnector;
  connInfo: ConnectionInfo;
  /** Size of the exported volume in bytes. */
  sizeBytes: number;
  /** Grow the volume on the storage side; returns the new size in bytes. */
  grow: () => Promise<number>;
  /** A second connector instance as after a process restart (same state dir, fresh memory). */
  restarted?: () => Promise<HostConnector> | HostConnector;
  io?: AttachedIo;
  cleanup: () => Promise<void>;
}

/** Host-connector contract: attach gives a usable path, extend shows the new size, detach undoes it all. */
export function connectorContract(name: string, factory: () => Promise<ConnectorFixture>, opts: { timeoutMs?: number } = {}): void {
  describe(`connector contract: ${name}`, { timeout: opts.timeoutMs ?? 120_000 }, () => {
    let fx: ConnectorFixture;
    beforeAll(async () => {
      fx = await factory();
    }, opts.timeoutMs ?? 120_000);
    afterAll(async () => {
      await fx?.cleanup();
    }, opts.timeoutMs ?? 120_000);

    it("reports connector properties as a plain object", async () => {
      const props = await fx.connector.getConnectorProperties();
      expect(typeof props).toBe("object");
      expect(JSON.parse(JSON.stringify(props))).toEqual(props);
    });

    it("handles its protocol", () => {
      expect(fx.connector.protocols).toContain(fx.connInfo.driver_volume_type);
    });

    it("attaches, does I/O, extends, and detaches (twice)", async () => {
      const io = fx.io ?? localIo;
      const attach: AttachInfo = await fx.connector.connectVolume(fx.connInfo);
      expect(attach.path).toBeTruthy();
      expect(attach.method).toBeTruthy();
      // AttachInfo is persisted as JSON: it must survive a round trip.
      expect(JSON.parse(JSON.stringify(attach))).toEqual(attach);
      expect(await io.size(attach.path)).toBe(fx.sizeBytes);
      const data = Buffer.alloc(8192, 0x5a);
      await io.write(attach.path, 4096, data);
      expect((await io.read(attach.path, 4096, data.length)).equals(data)).toBe(true);
      const newSize = await fx.grow();
      expect(await fx.connector.extendVolume(fx.connInfo, attach)).toBe(newSize);
      expect(await io.size(attach.path)).toBe(newSize);
      expect((await io.read(attach.path, 4096, data.length)).equals(data)).toBe(true);
      const detacher = fx.restarted ? await fx.restarted() : fx.connector;
      if (detacher.checkAttached) expect(await detacher.checkAttached(attach)).toBe(true);
      await detacher.disconnectVolume(fx.connInfo, attach);
      if (detacher.checkAttached) expect(await detacher.checkAttached(attach)).toBe(false);
      await detacher.disconnectVolume(fx.connInfo, attach);
    });
  });
}
