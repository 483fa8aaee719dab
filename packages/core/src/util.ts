import { readFileSync } from "node:fs";
import { hostname } from "node:os";

// The Web Crypto global, not node:crypto: importing that module costs every CLI start ~7 ms, also those that
// never make an id.
export const newId = (): string => globalThis.crypto.randomUUID();
export const nowIso = (): string => new Date().toISOString();

/**
 * Identity of a process on Linux that survives pid reuse: the boot id and the process start time
 * (field 22 of /proc/PID/stat). Empty where /proc is not available.
 */
function processStamp(pid: number): string | undefined {
  try {
    const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim().slice(0, 8);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
    const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    return start ? `${boot}.${start}` : undefined;
  } catch {
    return undefined;
  }
}

let ownStamp: string | undefined | null = null;

/**
 * host:pid:stamp — recorded with intents and locks so a crash can be told from a live operation, also when
 * the pid has since been reused by another process.
 */
export const processOwner = (): string => {
  if (ownStamp === null) ownStamp = processStamp(process.pid);
  return `${hostname()}:${process.pid}${ownStamp ? `:${ownStamp}` : ""}`;
};

/** Is the owner process alive? Only answerable for this host; other hosts → assume alive. */
export function ownerIsAlive(owner: string): boolean {
  const [host, pidText, stamp] = owner.split(":");
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isInteger(pid)) return true;
  if (pid === process.pid) return stamp === undefined || stamp === processOwner().split(":")[2];
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
  // The pid exists: it is our owner only if it is the same process (same boot, same start time).
  if (stamp === undefined) return true;
  const now = processStamp(pid);
  return now === undefined || now === stamp;
}

export const GiB = 1024 ** 3;
