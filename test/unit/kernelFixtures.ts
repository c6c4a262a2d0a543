import { TopologyOptions } from "../../topology";

/** The kernel tests read their topologies as an ssh stack's: only ssh hosts have a kernel block. */
export const SSH: TopologyOptions = { kind: "ssh" };
/** An ASCII-armored key block, as a kernel repository's key (its content is never checked). */
export const KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGZ0AAABEADtest\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n";
