import { ensureFsTools } from "./fs-fixture.js";

/** Installs the mkfs tools the filesystem tests need (btrfs-progs, xfsprogs) when missing and root. */
export default function setup(): void {
  const installed = ensureFsTools(["btrfs", "xfs", "ext4"]);
  if (installed.length) console.log(`installed ${installed.join(", ")} for the filesystem tests`);
}
