import { utils } from "ssh2";

/** Host keys for the ssh tests: public halves only (their private halves were thrown away). */
export const K1_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJSgoaBKReMIjr6qnxVsW5xl4Wgr+MD0LSWh4HiQ0fIJ";
export const K2_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDukwW/+mpyXHW6iTsO18UpQq4J9FUDYJfhHWIoKd0YP";
export const JUMP_KEY =
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMGOc/kOzG2K+EkvmvB9v5p7M3iJsZ2PHbKvGhNHld19w/qh7pMDUy/U2EZwMnW9FBFm9AaqGnW8/tR3nCIo5nk=";

/**
 * An ed25519 key pair from ssh2's generator that ssh2 itself can read back. About one pair in 256
 * comes out malformed: the generator strips every leading zero byte of the 32-byte public key
 * (mscdex/ssh2#1390, #1513, open in 1.17.0), so its public key, and the copy in the private key,
 * are 31 bytes and `parseKey` rejects both. Such a pair is drawn again; keys that ssh-keygen makes
 * never have the defect, so no program path needs this.
 */
export function ed25519Pair(passphrase?: string): utils.KeyPairReturn {
    for (let attempt = 0; attempt < 16; attempt++) {
        const pair =
            passphrase === undefined
                ? utils.generateKeyPairSync("ed25519")
                : utils.generateKeyPairSync("ed25519", { passphrase, cipher: "aes256-ctr", rounds: 16 });
        if (!(utils.parseKey(pair.public) instanceof Error) && !(utils.parseKey(pair.private, passphrase) instanceof Error)) return pair;
    }
    throw new Error("ssh2 made 16 unreadable ed25519 key pairs in a row");
}
