import { definePersistence, MemoryPersistence } from "@cinderts/core";
import { z } from "@cinderts/core";

/** No options: the store lives and dies with the process. */
export const MemoryOptions = z.object({}).strict().describe("@cinderts/persistence-memory takes no options");
export type MemoryOptions = z.infer<typeof MemoryOptions>;

export { MemoryPersistence };

/**
 * In-memory metadata for tests and for embedding cinderts where state is kept elsewhere. It has no
 * cross-process locks: the host uses its in-process lock manager, which is right because nothing outside
 * this process can see the state.
 */
export default definePersistence({
  id: "memory",
  version: "0.1.0",
  description: "Volumes, snapshots, connections and key-values in process memory; gone when the process exits",
  configSchema: MemoryOptions,
  create: () => new MemoryPersistence(),
});
