import { Stats, closeSync, constants, fstatSync, openSync, readSync, statSync } from "fs";
import { FouInputError } from "../lib/validate";

/**
 * Reading the file that `fou-tunnel:topology` names, which may be any path a user typed: only a
 * regular file of at most {@link MAX_TOPOLOGY_BYTES} is read. A device, FIFO or socket is never
 * read (/dev/zero never ends, a FIFO blocks until a writer comes), and the read stops one byte
 * past the cap whatever the file's size says (files under /proc say 0).
 */

/** 1 MiB: a topology of thousands of tunnels is far smaller. */
export const MAX_TOPOLOGY_BYTES = 1024 * 1024;

/** Returns the text of the file at `path` (symlinks followed); anything else is a one-line FouInputError naming the path. */
export function readTopologyFile(path: string): string {
    checkStats(path, statOf(path));
    const fd = openOf(path);
    try {
        checkStats(path, fstatSync(fd));
        return readAtMost(path, fd, MAX_TOPOLOGY_BYTES).toString("utf8");
    } finally {
        closeSync(fd);
    }
}

function refuse(path: string, reason: string): never {
    throw new FouInputError([`${path}: cannot read the topology file: ${reason}`]);
}

/** The reason of a failed stat or open, in words for the common cases. */
function failure(path: string, e: unknown): never {
    const code = (e as NodeJS.ErrnoException).code;
    const reason =
        code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : (e as Error).message;
    refuse(path, reason);
}

/** Stat before open: opening a device can act on it (a tape rewinds, a watchdog starts). */
function statOf(path: string): Stats {
    try {
        return statSync(path);
    } catch (e) {
        failure(path, e);
    }
}

/** O_NONBLOCK so that a FIFO swapped in after the stat does not block the open; it changes nothing for a regular file. */
function openOf(path: string): number {
    try {
        return openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    } catch (e) {
        failure(path, e);
    }
}

/** Refuses what is not a regular file, or is one over the cap. */
function checkStats(path: string, st: Stats): void {
    const kind = kindOf(st);
    if (kind !== undefined) {
        refuse(path, `it is ${kind}`);
    }
    if (st.size > MAX_TOPOLOGY_BYTES) {
        refuse(path, `it is ${sizeText(st.size)}; a topology file is at most 1 MiB`);
    }
}

function kindOf(st: Stats): string | undefined {
    if (st.isFile()) return undefined;
    if (st.isDirectory()) return "a directory";
    if (st.isCharacterDevice()) return "a character device";
    if (st.isBlockDevice()) return "a block device";
    if (st.isFIFO()) return "a FIFO (named pipe)";
    if (st.isSocket()) return "a socket";
    return "not a regular file";
}

/** 1.5 MiB; in bytes when one decimal would round down to the cap itself. */
function sizeText(bytes: number): string {
    const mib = bytes / MAX_TOPOLOGY_BYTES;
    return mib >= 1.05 ? `${Number(mib.toFixed(1))} MiB` : `${bytes} bytes`;
}

/** Reads until end of file or `cap` + 1 bytes, so that a file growing past the cap is still refused. */
function readAtMost(path: string, fd: number, cap: number): Buffer {
    const buf = Buffer.alloc(cap + 1);
    let used = 0;
    for (;;) {
        const n = readSync(fd, buf, used, buf.length - used, null);
        used += n;
        if (n === 0 || used === buf.length) break;
    }
    if (used > cap) {
        refuse(path, "it is more than 1 MiB; a topology file is at most 1 MiB");
    }
    return buf.subarray(0, used);
}
