import { BusyError, isStorageError, StorageError } from "@cinderts/core";

/** better-sqlite3's SqliteError carries SQLite's extended result code as a string (SQLITE_BUSY_SNAPSHOT …). */
const sqliteCode = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "string" && (e as { code: string }).code.startsWith("SQLITE_")
    ? (e as { code: string }).code
    : undefined;

export const isBusy = (e: unknown): boolean => {
  const c = sqliteCode(e);
  return c !== undefined && (c.startsWith("SQLITE_BUSY") || c.startsWith("SQLITE_LOCKED"));
};

/** Maps a SQLite failure into the core hierarchy; our own StorageErrors (ConflictError) pass through. */
export function wrapSqliteError(e: unknown, what: string, file: string): StorageError {
  if (isStorageError(e)) return e;
  const message = e instanceof Error ? e.message : String(e);
  if (isBusy(e)) {
    return new BusyError(`${what}: the SQLite database ${file} stayed locked by another process past busyTimeoutMs (${message})`, { cause: e });
  }
  return new StorageError("INTERNAL", `${what}: SQLite database ${file}: ${message}`, {
    cause: e,
    data: sqliteCode(e) ? { sqliteCode: sqliteCode(e) } : undefined,
  });
}
