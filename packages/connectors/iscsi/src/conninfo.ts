import { z } from "@cinderts/core";
import { InvalidArgumentError, parseInput, type ConnectionInfo } from "@cinderts/core";

const IQN = /^(?:iqn\.\d{4}-\d{2}\.[A-Za-z0-9.-]+(?::[A-Za-z0-9.:_-]+)?|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16,32})$/;
const PORTAL = /^(?:\[[0-9A-Fa-f:.]+\]|[0-9.]+|[A-Za-z0-9.-]+):\d{1,5}$/;

const iqn = z.string().regex(IQN, "must be an iSCSI name");
const portal = z.string().regex(PORTAL, "must be ip:port");
const lun = z.number().int().min(0).max(16383);

/** os-brick's iSCSI connection properties (the keys Cinder's targets send). */
export const IscsiConnData = z
  .object({
    target_portal: portal,
    target_iqn: iqn,
    target_lun: lun.default(0),
    target_portals: z.array(portal).optional(),
    target_iqns: z.array(iqn).optional(),
    target_luns: z.array(lun).optional(),
    auth_method: z.string().optional(),
    auth_username: z.string().regex(/^[A-Za-z0-9._:@-]{1,255}$/).optional(),
    auth_password: z.string().regex(/^[\x21-\x2b\x2d-\x7e]{1,255}$/, "printable, no spaces or commas").optional(),
  })
  .loose();
export type IscsiConnData = z.output<typeof IscsiConnData>;

export interface IscsiPath {
  portal: string;
  iqn: string;
  lun: number;
}

export interface ParsedConn {
  paths: IscsiPath[];
  chap?: { user: string; password: string };
}

export function parseConnInfo(info: ConnectionInfo): ParsedConn {
  const d = parseInput(IscsiConnData, info.data, "iSCSI connection info");
  let paths: IscsiPath[] = [{ portal: d.target_portal, iqn: d.target_iqn, lun: d.target_lun }];
  if (d.target_portals?.length && d.target_iqns?.length) {
    if (d.target_portals.length !== d.target_iqns.length) throw new InvalidArgumentError("target_portals and target_iqns differ in length");
    paths = d.target_portals.map((p, i) => ({ portal: p, iqn: d.target_iqns![i]!, lun: d.target_luns?.[i] ?? d.target_lun }));
  }
  let chap: ParsedConn["chap"];
  if (d.auth_method) {
    if (d.auth_method.toUpperCase() !== "CHAP") throw new InvalidArgumentError(`auth_method ${d.auth_method} is not supported (CHAP only)`);
    if (!d.auth_username || !d.auth_password) throw new InvalidArgumentError("CHAP needs auth_username and auth_password");
    chap = { user: d.auth_username, password: d.auth_password };
  }
  return { paths, ...(chap ? { chap } : {}) };
}

/** The udev by-path name of a LUN (IPv6 portals lose their brackets there). */
export function byPath(p: IscsiPath): string {
  return `/dev/disk/by-path/ip-${p.portal.replace(/^\[([^\]]+)\]/, "$1")}-iscsi-${p.iqn}-lun-${p.lun}`;
}
