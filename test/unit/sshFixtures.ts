/** Host keys for the ssh tests: public halves only (their private halves were thrown away). */
export const K1_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJSgoaBKReMIjr6qnxVsW5xl4Wgr+MD0LSWh4HiQ0fIJ";
export const K2_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDukwW/+mpyXHW6iTsO18UpQq4J9FUDYJfhHWIoKd0YP";
export const JUMP_KEY =
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMGOc/kOzG2K+EkvmvB9v5p7M3iJsZ2PHbKvGhNHld19w/qh7pMDUy/U2EZwMnW9FBFm9AaqGnW8/tR3nCIo5nk=";
