import { createHash } from "node:crypto";
import { BackendError, InvalidArgumentError, type AttachInfo, type CommandRunner, type Logger, type RunOptions } from "@cinderts/core";
import type { IscsiPath, ParsedConn } from "./conninfo.js";

// Stops the daemon only if the pid still belongs to a qemu-storage-daemon serving this mountpoint (pid reuse
// after a reboot), then makes sure the FUSE mount is gone and removes the files.
const STOP = `
pidf=$1 mnt=$2 qmp=$3
pid=$(cat "$pidf" 2>/dev/null || :)
if [ -n "$pid" ] && tr '\\0' '\\n' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "mountpoint=$mnt,"; then
  kill -TERM "$pid" 2>/dev/null || :
  i=0
  while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 150 ]; do sleep 0.1; i=$((i+1)); done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || :; fi
fi
if awk -v m="$mnt" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts; then
  fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || :
fi
rm -f "$pidf" "$mnt" "$qmp"
`;
const WAIT_SIZE = 'i=0; while [ "$(stat -c %s "$1")" != "$2" ] && [ "$i" -lt 30 ]; do sleep 0.1; i=$((i+1)); done; stat -c %s "$1"';
const ALIVE = `pid=$(cat "$1" 2>/dev/null) && tr '\\0' '\\n' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "mountpoint=$2," && echo "$pid"`;
// A minimal QMP client: perl (a dependency of open-iscsi/tgt tooling and in perl-base) speaks the socket.
const QMP = `
use strict; use IO::Socket::UNIX;
my ($path, @cmds) = @ARGV;
my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path) or die "cannot connect to $path: $!\\n";
sub reply { while (my $l = <$s>) { return $l if $l =~ /"(return|error|QMP)"/; } die "QMP connection closed\\n"; }
reply();
print $s '{"execute":"qmp_capabilities"}';
reply();
for my $c (@cmds) { print $s $c; my $r = reply(); print $r; exit 1 if $r =~ /"error"/; }
`;

export interface UserspaceHandle {
  path: IscsiPath;
  mountpoint: string;
  pidFile: string;
  qmpSocket: string;
  pid: number;
  initiator: string;
  /** CHAP user (the secret is never stored; extend gets it again from the connection info). */
  user?: string;
}

// Node (and ssh) hand stdin over as a socket, which qemu cannot open as /dev/stdin (ENXIO): a pipe through cat
// gives it a real FIFO. The secret still never touches argv or disk.
const VIA_PIPE = 'cat | exec "$0" "$@"';

// qemu's option syntax splits on commas: everything placed into a -blockdev/-export string is checked.
const OPT_SAFE = /^[^,\s=]+$/;
function optSafe(name: string, v: string): string {
  if (!OPT_SAFE.test(v)) throw new InvalidArgumentError(`${name} ${JSON.stringify(v)} cannot be passed to qemu-storage-daemon`);
  return v;
}

/** libiscsi inside qemu-storage-daemon, exported through FUSE onto a regular file: no kernel iSCSI needed. */
export class UserspaceInitiator {
  constructor(
    private readonly runner: CommandRunner,
    private readonly log: Logger,
    private readonly o: { root: boolean; stateDir: string },
  ) {}

  private run(argv: string[], opts: RunOptions = {}) {
    return this.runner.run(argv, { root: this.o.root, ...opts });
  }

  private files(p: IscsiPath) {
    // Short hashed names: a UNIX socket path must stay under 108 bytes.
    const id = createHash("sha256").update(`${p.iqn.toLowerCase()}\0${p.lun}`).digest("hex").slice(0, 20);
    const base = `${this.o.stateDir}/fuse/${id}`;
    const qmp = `${base}.qmp`.length < 100 ? `${base}.qmp` : `/tmp/cinderts-qsd-${id}.qmp`;
    return { mountpoint: `${base}.img`, pidFile: `${base}.pid`, qmpSocket: qmp };
  }

  private blockdev(p: IscsiPath, conn: ParsedConn, initiator: string): string {
    return [
      "driver=iscsi",
      "node-name=vol",
      "transport=tcp",
      `portal=${optSafe("portal", p.portal)}`,
      `target=${optSafe("target", p.iqn)}`,
      `lun=${p.lun}`,
      ...(conn.chap ? [`user=${optSafe("CHAP user", conn.chap.user)}`, "password-secret=chap"] : []),
      `initiator-name=${optSafe("initiator", initiator)}`,
    ].join(",");
  }

  private secretObject(conn: ParsedConn): string[] {
    // The secret is read from stdin, so it is never in argv (ps) nor in a file.
    return conn.chap ? ["--object", "secret,id=chap,file=/dev/stdin"] : [];
  }

  async connect(conn: ParsedConn, initiator: string, host: string): Promise<AttachInfo> {
    const errors: unknown[] = [];
    for (const p of conn.paths) {
      const f = this.files(p);
      const alive = await this.run(["sh", "-c", ALIVE, "alive", f.pidFile, f.mountpoint], { okExitCodes: [0, 1] });
      if (alive.exitCode === 0 && alive.stdout.trim()) {
        return this.info(host, { path: p, ...f, pid: Number(alive.stdout.trim()), initiator, user: conn.chap?.user });
      }
      await this.run(["sh", "-c", STOP, "stop", f.pidFile, f.mountpoint, f.qmpSocket]);
      await this.run(["mkdir", "-p", "-m", "0700", `${this.o.stateDir}/fuse`]);
      await this.run(["sh", "-c", 'umask 077 && : > "$1"', "touch", f.mountpoint]);
      const argv = [
        "sh",
        "-c",
        VIA_PIPE,
        "qemu-storage-daemon",
        ...this.secretObject(conn),
        "--blockdev",
        this.blockdev(p, conn, initiator),
        "--export",
        `type=fuse,id=exp0,node-name=vol,mountpoint=${optSafe("mountpoint", f.mountpoint)},writable=on`,
        "--chardev",
        `socket,id=qmp0,path=${optSafe("socket", f.qmpSocket)},server=on,wait=off`,
        "--monitor",
        "chardev=qmp0",
        "--pidfile",
        f.pidFile,
        "--daemonize",
      ];
      try {
        await this.run(argv, { input: conn.chap?.password ?? "", secrets: conn.chap ? [conn.chap.password] : [], timeoutMs: 60_000 });
        const pid = Number((await this.run(["cat", f.pidFile])).stdout.trim());
        return this.info(host, { path: p, ...f, pid, initiator, user: conn.chap?.user });
      } catch (e) {
        errors.push(e);
        this.log.warn("user-space iSCSI attach failed", { portal: p.portal, iqn: p.iqn, error: e });
        await this.run(["sh", "-c", STOP, "stop", f.pidFile, f.mountpoint, f.qmpSocket]).catch(() => undefined);
      }
    }
    throw new BackendError(`could not attach ${conn.paths[0]?.iqn} with qemu-storage-daemon`, { cause: errors[0] });
  }

  private info(host: string, h: UserspaceHandle): AttachInfo {
    return { connector: "iscsi", method: "qemu-storage-daemon", path: h.mountpoint, host, handle: h as unknown as Record<string, unknown> };
  }

  async disconnect(h: UserspaceHandle): Promise<void> {
    // SIGTERM makes qemu-storage-daemon flush and close the export before it exits.
    await this.run(["sh", "-c", STOP, "stop", h.pidFile, h.mountpoint, h.qmpSocket]);
  }

  async attached(h: UserspaceHandle): Promise<boolean> {
    const r = await this.run(["sh", "-c", ALIVE, "alive", h.pidFile, h.mountpoint], { okExitCodes: [0, 1] });
    return r.exitCode === 0 && r.stdout.trim() !== "";
  }

  /** libiscsi reads the capacity at open: ask the target for the new one, then block_resize the node to it. */
  async extend(h: UserspaceHandle, conn: ParsedConn): Promise<number> {
    const info = await this.run(
      ["sh", "-c", VIA_PIPE, "qemu-img", "info", "--output=json", ...this.secretObject(conn), "--image-opts", this.blockdev(h.path, conn, h.initiator).replace("node-name=vol,", "")],
      { input: conn.chap?.password ?? "", secrets: conn.chap ? [conn.chap.password] : [] },
    );
    const size = Number((JSON.parse(info.stdout) as { "virtual-size"?: number })["virtual-size"]);
    if (!Number.isSafeInteger(size) || size <= 0) throw new BackendError("could not read the LUN's new capacity");
    await this.run(["perl", "-e", QMP, h.qmpSocket, JSON.stringify({ execute: "block_resize", arguments: { "node-name": "vol", size } })]);
    // The kernel caches FUSE attributes (qemu replies with a 1 s timeout): wait until the file shows the size.
    const st = await this.run(["sh", "-c", WAIT_SIZE, "size", h.mountpoint, String(size)], { okExitCodes: [0, 1] });
    const seen = Number(st.stdout.trim());
    if (seen !== size) throw new BackendError(`the FUSE export still shows ${seen} bytes after resizing to ${size}`);
    return seen;
  }
}
