/** tgtadm argv builders and the parser of `tgtadm --op show --mode target`. */

export interface TgtLun {
  lun: number;
  /** Backing store path; undefined for the controller LUN 0 ("None"). */
  path?: string;
  sizeBytes?: number;
}

export interface TgtTargetState {
  tid: number;
  iqn: string;
  luns: TgtLun[];
  /** Incoming CHAP accounts bound to the target ("(outgoing)" ones are left out). */
  accounts: string[];
  /** ACL entries: initiator names or addresses ("ALL", IPs). */
  acls: string[];
  /** Initiator names of open sessions (I_T nexus). */
  sessions: string[];
}

type Section = "none" | "nexus" | "lun" | "account" | "acl";

/**
 * Parses the human output of `tgtadm --lld iscsi --op show --mode target` (tgt 1.0.x). The format has been
 * stable for a decade; section headers sit at 4 spaces, entries below them.
 */
export function parseShowTarget(out: string): Map<string, TgtTargetState> {
  const targets = new Map<string, TgtTargetState>();
  let cur: TgtTargetState | undefined;
  let section: Section = "none";
  let lun: TgtLun | undefined;
  for (const raw of out.split("\n")) {
    const line = raw.replace(/\s+$/, "");
    const t = /^Target (\d+): (\S+)$/.exec(line);
    if (t) {
      cur = { tid: Number(t[1]), iqn: t[2]!, luns: [], accounts: [], acls: [], sessions: [] };
      targets.set(cur.iqn, cur);
      section = "none";
      continue;
    }
    if (!cur) continue;
    const header = /^ {4}(\S.*):$/.exec(line);
    if (header) {
      section =
        header[1] === "I_T nexus information"
          ? "nexus"
          : header[1] === "LUN information"
            ? "lun"
            : header[1] === "Account information"
              ? "account"
              : header[1] === "ACL information"
                ? "acl"
                : "none";
      continue;
    }
    const body = line.trim();
    if (!body) continue;
    switch (section) {
      case "nexus": {
        const m = /^Initiator: (\S+)/.exec(body);
        if (m) cur.sessions.push(m[1]!);
        break;
      }
      case "lun": {
        const l = /^LUN: (\d+)$/.exec(body);
        if (l) {
          lun = { lun: Number(l[1]) };
          cur.luns.push(lun);
          break;
        }
        const p = /^Backing store path: (.*)$/.exec(body);
        if (p && lun && p[1] !== "None") lun.path = p[1];
        break;
      }
      case "account":
        if (!/\(outgoing\)$/.test(body)) cur.accounts.push(body);
        break;
      case "acl":
        cur.acls.push(body);
        break;
      default:
        break;
    }
  }
  return targets;
}

/** Builds tgtadm argv arrays for one tgtd (its control port, if not the default one). */
export class Tgtadm {
  constructor(private readonly controlPort?: number) {}

  private base(): string[] {
    return ["tgtadm", ...(this.controlPort === undefined ? [] : ["-C", String(this.controlPort)]), "--lld", "iscsi"];
  }

  system(): string[] {
    return [...this.base(), "--op", "show", "--mode", "system"];
  }
  show(): string[] {
    return [...this.base(), "--op", "show", "--mode", "target"];
  }
  newTarget(tid: number, iqn: string): string[] {
    return [...this.base(), "--op", "new", "--mode", "target", "--tid", String(tid), "-T", iqn];
  }
  deleteTarget(tid: number, force: boolean): string[] {
    return [...this.base(), "--op", "delete", "--mode", "target", "--tid", String(tid), ...(force ? ["--force"] : [])];
  }
  newLun(tid: number, lun: number, path: string, bsType?: string): string[] {
    return [
      ...this.base(),
      "--op",
      "new",
      "--mode",
      "logicalunit",
      "--tid",
      String(tid),
      "--lun",
      String(lun),
      "-b",
      path,
      ...(bsType ? ["--bstype", bsType] : []),
    ];
  }
  deleteLun(tid: number, lun: number): string[] {
    return [...this.base(), "--op", "delete", "--mode", "logicalunit", "--tid", String(tid), "--lun", String(lun)];
  }
  newAccount(user: string, password: string): string[] {
    return [...this.base(), "--op", "new", "--mode", "account", "--user", user, "--password", password];
  }
  deleteAccount(user: string): string[] {
    return [...this.base(), "--op", "delete", "--mode", "account", "--user", user];
  }
  bindAccount(tid: number, user: string): string[] {
    return [...this.base(), "--op", "bind", "--mode", "account", "--tid", String(tid), "--user", user];
  }
  bindInitiator(tid: number, initiator: string): string[] {
    return [...this.base(), "--op", "bind", "--mode", "target", "--tid", String(tid), "--initiator-name", initiator];
  }
  unbindInitiator(tid: number, initiator: string): string[] {
    return [...this.base(), "--op", "unbind", "--mode", "target", "--tid", String(tid), "--initiator-name", initiator];
  }
  bindAddress(tid: number, address: string): string[] {
    return [...this.base(), "--op", "bind", "--mode", "target", "--tid", String(tid), "-I", address];
  }
}
