import { InvalidArgumentError, ResourceIdSchema } from "@cinderts/core";

/**
 * File names come from ids only, never from user text. Ids are checked again here, although core
 * validated them, because a file name is where a bad id would do harm (`../`, `/`).
 */
export function checkId(kind: "volume" | "snapshot", id: string): string {
  const r = ResourceIdSchema.safeParse(id);
  if (!r.success) {
    throw new InvalidArgumentError(`${kind} id ${JSON.stringify(id)} cannot name a file: ${r.error.issues[0]?.message ?? "invalid"}`, {
      issues: [{ path: "id", message: r.error.issues[0]?.message ?? "invalid" }],
    });
  }
  return id;
}

export const volumeFile = (id: string): string => `volume-${checkId("volume", id)}`;
export const snapshotFile = (id: string): string => `snapshot-${checkId("snapshot", id)}`;
/**
 * Copies are written under this name and renamed at the end, so a crash never leaves half a volume under
 * a volume's name. The leading dot keeps partial files out of `volume-*`.
 */
export const partialFile = (final: string): string => `.partial-${final}`;

const MANAGED = /^(\.partial-)?(volume|snapshot)-(.+)$/;

/** Parses a directory entry this driver made; undefined for anything else. */
export function parseManaged(name: string): { kind: "volume" | "snapshot"; id: string; partial: boolean } | undefined {
  const m = MANAGED.exec(name);
  if (!m) return undefined;
  const id = m[3]!;
  if (!ResourceIdSchema.safeParse(id).success) return undefined;
  return { kind: m[2] as "volume" | "snapshot", id, partial: m[1] !== undefined };
}
