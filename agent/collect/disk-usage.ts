// Disk usage per mount via statfs(2): one syscall per mount and no `df` process, for the 30-second slow path.
import { statfsSync } from "node:fs";
import { join } from "node:path";
import { readText } from "./_read-text.ts";
import { type MountEntry, parseMounts } from "./proc-parsers.ts";

// Kernel and memory-backed filesystems say nothing about the disk. Network filesystems are left out as well:
// statfs on a hung NFS or CIFS server blocks, and this runs on the event loop. autofs would mount on access.
// squashfs (snaps, read-only images) is always 100% full by construction.
const SKIPPED_FS_TYPES = new Set([
  "autofs",
  "binfmt_misc",
  "bpf",
  "cgroup",
  "cgroup2",
  "cifs",
  "configfs",
  "debugfs",
  "devpts",
  "devtmpfs",
  "efivarfs",
  "fuse.gvfsd-fuse",
  "fuse.lxcfs",
  "fuse.sshfs",
  "fusectl",
  "hugetlbfs",
  "mqueue",
  "nfs",
  "nfs4",
  "nfsd",
  "nsfs",
  "overlay",
  "proc",
  "pstore",
  "ramfs",
  "rpc_pipefs",
  "securityfs",
  "selinuxfs",
  "smb3",
  "squashfs",
  "sysfs",
  "tmpfs",
  "tracefs",
  "9p",
]);

/** Mount points worth watching: one per real filesystem, plus "/" whatever its type, "/" first. */
export function selectDiskMounts(entries: readonly MountEntry[]): string[] {
  // Bind mounts (a container's /etc/hosts, a btrfs subvolume) repeat a device; its shortest mount point stands for it.
  const byDevice = new Map<string, string>();
  for (const { device, mountPoint, fsType } of entries) {
    // "/" stays even as a container's overlay: it is the series operators look for, and it shows the host disk filling up.
    if (mountPoint !== "/" && SKIPPED_FS_TYPES.has(fsType)) continue;
    const seen = byDevice.get(device);
    if (seen === undefined || mountPoint.length < seen.length) byDevice.set(device, mountPoint);
  }
  const mounts = new Set(byDevice.values());
  return mounts.delete("/") ? ["/", ...mounts] : [...mounts];
}

/** The default mounts to watch, read from `procRoot`/mounts; empty when there is no /proc. */
export function readDiskMounts(procRoot: string): string[] {
  const text = readText(join(procRoot, "mounts"));
  return text === undefined ? [] : selectDiskMounts(parseMounts(text));
}

/** Used space as `df` computes Use%: used / (used + available to unprivileged users), in percent; undefined when unreadable. */
export function diskUsedPct(mount: string): number | undefined {
  try {
    const { blocks, bfree, bavail } = statfsSync(mount);
    const used = blocks - bfree;
    // Blocks reserved for root are neither used nor available to users, so a disk reads 100% when users can write no more.
    const usable = used + bavail;
    return usable > 0 ? (used / usable) * 100 : undefined;
  } catch {
    return undefined;
  }
}

/** Total size of the filesystem holding `mount`, in bytes; undefined when unreadable. */
export function diskSizeBytes(mount: string): number | undefined {
  try {
    const { blocks, bsize } = statfsSync(mount);
    return blocks * bsize;
  } catch {
    return undefined;
  }
}
