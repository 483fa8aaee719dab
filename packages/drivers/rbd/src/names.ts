import { InvalidArgumentError } from "@cinderts/core";

/** Image metadata key holding the cinderts volume id: how reconcile tells our images from others. */
export const OWNER_KEY = "cinderts.volume_id";
/** Suffix of a deleted volume kept because COW clones still depend on it (Cinder's "silent volume"). */
export const DELETED_SUFFIX = ".deleted";
/** Suffix of the temporary snapshot a clone-volume takes on its source (Cinder's naming). */
export const CLONE_SNAP_SUFFIX = ".clone_snap";

const ID = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

// ids become image and snapshot names, and those reach argv: refuse anything that could change their meaning
// (`/` and `@` separate pool, image and snapshot in rbd specs; a leading `-` would read as an option).
function checkId(kind: "volume" | "snapshot", id: string): string {
  if (!ID.test(id) || id.length > 128) {
    throw new InvalidArgumentError(`${kind} id ${JSON.stringify(id)} cannot name an RBD image: use letters, digits, _ and -`, {
      resource: { kind, id },
    });
  }
  return id;
}

export const volumeImage = (volumeId: string): string => `volume-${checkId("volume", volumeId)}`;
export const snapshotName = (snapshotId: string): string => `snapshot-${checkId("snapshot", snapshotId)}`;
export const cloneSnapName = (dstVolumeId: string): string => `${volumeImage(dstVolumeId)}${CLONE_SNAP_SUFFIX}`;

/** volume-<id> or volume-<id>.deleted → id; anything else → undefined. */
export function volumeIdOf(image: string): string | undefined {
  const m = /^volume-([A-Za-z0-9][A-Za-z0-9_-]*?)(\.deleted)?$/.exec(image);
  return m?.[1];
}
