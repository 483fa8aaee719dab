/**
 * Tests that need a real service (Ceph, tgt, sshd, PostgreSQL, the Linux test host) read its location from
 * env vars written by the testbed scripts. Locally a missing testbed skips those tests; in CI (CI set) it is
 * a failure, so a broken testbed can never turn into a silently green run.
 */
export function testbedEnv<K extends string>(testbed: string, keys: readonly K[]): Record<K, string> | undefined {
  const missing = keys.filter((k) => !process.env[k]);
  if (missing.length === 0) return Object.fromEntries(keys.map((k) => [k, process.env[k]!])) as Record<K, string>;
  if (process.env.CI) {
    throw new Error(
      `testbed ${testbed} is required in CI but ${missing.join(", ")} ${missing.length > 1 ? "are" : "is"} not set: start it with tooling/testbeds/${testbed}/start.sh`,
    );
  }
  return undefined;
}
