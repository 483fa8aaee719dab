import { cleanupStaleFs, ensureFsTools } from "./fs-fixture.js";

/** Removes filesystems left by killed test runs, then installs missing mkfs tools (btrfs-progs, xfsprogs) as root. */
export default function setup(): void {
  const stale = cleanupStaleFs();
  if (stale.length) console.log(`removed ${stale.length} test filesystem(s) left by killed runs`);
  const installed = ensureFsTools(["btrfs", "xfs", "ext4"]);
  if (installed.length) console.log(`installed ${installed.join(", ")} for the filesystem tests`);
}
