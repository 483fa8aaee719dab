import { randomUUID } from "node:crypto";
import { hostname } from "node:os";

export const newId = (): string => randomUUID();
export const nowIso = (): string => new Date().toISOString();

/** host:pid — recorded with intents and locks so a crash can be told from a live operation. */
export const processOwner = (): string => `${hostname()}:${process.pid}`;

/** Is the owner process (host:pid) alive? Only answerable for this host; other hosts → assume alive. */
export function ownerIsAlive(owner: string): boolean {
  const i = owner.lastIndexOf(":");
  const host = owner.slice(0, i);
  const pid = Number(owner.slice(i + 1));
  if (host !== hostname() || !Number.isInteger(pid)) return true;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export const GiB = 1024 ** 3;
