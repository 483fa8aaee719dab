import { describe, expect, it } from "vitest";
import { z } from "@cinderts/core";
import {
  IscsiTargetOptions,
  buildConnectionInfo,
  formatPortal,
  formatProviderLocation,
  generateChap,
  parsePortal,
  parseProviderAuth,
  parseProviderLocation,
  portalsOf,
  requireInitiator,
  targetIqn,
} from "../src/index.js";

describe("iSCSI target helpers", () => {
  it("formats and parses Cinder's provider_location (tgt tid, LIO IQN, IPv6 portals)", () => {
    const tgt = { portals: [{ ip: "127.0.0.1", port: 3260 }, { ip: "::1", port: 3261 }], tid: "3", iqn: "iqn.2010-10.org.openstack:volume-a", lun: 1 };
    const s = formatProviderLocation(tgt);
    expect(s).toBe("127.0.0.1:3260;[::1]:3261,3 iqn.2010-10.org.openstack:volume-a 1");
    expect(parseProviderLocation(s)).toEqual(tgt);
    const lio = "10.0.0.1:3260,iqn.2010-10.org.openstack:volume-b iqn.2010-10.org.openstack:volume-b 0";
    expect(parseProviderLocation(lio)).toMatchObject({ tid: "iqn.2010-10.org.openstack:volume-b", lun: 0 });
    expect(() => parseProviderLocation("garbage")).toThrow(/not an iSCSI location/);
    expect(() => parsePortal("1.2.3.4:99999")).toThrow();
  });

  it("generates CHAP credentials from Cinder's alphabet and round-trips provider_auth", () => {
    const c = generateChap();
    expect(c.user).toMatch(/^[2-9A-HJ-NP-Za-km-z]{20}$/);
    expect(c.password).toMatch(/^[2-9A-HJ-NP-Za-km-z]{16}$/);
    expect(generateChap()).not.toEqual(c);
    expect(parseProviderAuth(`CHAP ${c.user} ${c.password}`)).toEqual(c);
    expect(parseProviderAuth(null)).toBeUndefined();
    expect(parseProviderAuth("NONE")).toBeUndefined();
  });

  it("builds target IQNs only from safe volume ids", () => {
    expect(targetIqn("iqn.2010-10.org.openstack:", { id: "ABC-1" })).toBe("iqn.2010-10.org.openstack:volume-abc-1");
    expect(() => targetIqn("iqn.2010-10.org.openstack:", { id: "a b" })).toThrow(/cannot be used/);
    expect(() => targetIqn("iqn.2010-10.org.openstack:", { id: "../x" })).toThrow();
  });

  it("requires an initiator IQN on the connector", () => {
    expect(requireInitiator({ host: "h", multipath: false, initiator: "iqn.1993-08.org.debian:01:abc" })).toBe("iqn.1993-08.org.debian:01:abc");
    expect(() => requireInitiator({ host: "h", multipath: false })).toThrow(/initiator/);
    expect(() => requireInitiator({ host: "h", multipath: false, initiator: "-I ALL" })).toThrow(/not an iSCSI name/);
  });

  it("adds the plural keys only for several portals or a multipath connector", () => {
    const one = buildConnectionInfo({ iqn: "iqn.2010-10.x:v", portals: [{ ip: "1.2.3.4", port: 3260 }], lun: 0, volumeId: "v" });
    expect(one.data).not.toHaveProperty("target_portals");
    expect(one.data).not.toHaveProperty("auth_method");
    const mp = buildConnectionInfo({ iqn: "iqn.2010-10.x:v", portals: [{ ip: "1.2.3.4", port: 3260 }], lun: 0, volumeId: "v", multipath: true });
    expect(mp.data).toMatchObject({ target_portals: ["1.2.3.4:3260"], target_iqns: ["iqn.2010-10.x:v"], target_luns: [0] });
  });

  it("lists secondary addresses on targetPort, then secondaryPortals with their own ports, and refuses a portal named twice", () => {
    const schema = z.object(IscsiTargetOptions).strict();
    const cfg = schema.parse({ targetIp: "127.0.0.1", secondaryIps: ["::1"], secondaryPortals: ["127.0.0.1:3261", "[fe80::1]:3262"] });
    expect(portalsOf(cfg).map(formatPortal)).toEqual(["127.0.0.1:3260", "[::1]:3260", "127.0.0.1:3261", "[fe80::1]:3262"]);
    expect(schema.safeParse({ targetIp: "127.0.0.1", secondaryPortals: ["127.0.0.1"] }).success).toBe(false);
    expect(schema.safeParse({ targetIp: "127.0.0.1", secondaryPortals: ["host:3260"] }).success).toBe(false);
    expect(() => portalsOf(schema.parse({ targetIp: "127.0.0.1", secondaryPortals: ["127.0.0.1:3260"] }))).toThrow(/configured twice/);
  });
});
