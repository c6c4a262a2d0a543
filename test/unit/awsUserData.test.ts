/**
 * The instances' user data: cloud-init's config for the host key, the login user and nftables,
 * to the byte for one host, secret, and replacing the instance when it changes.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import YAML from "yaml";
import { plain } from "./secretInputs";
import { cloudConfig, publicKeyLine } from "../../hosts/aws";
import { PUBLIC_KEY, declareAwsHosts, hostPrivate, hostPublic, res } from "./awsFixtures";

declareAwsHosts();

/** The user data the aws stack renders for k1 of the mocks, to the byte. */
const K1_USER_DATA = `#cloud-config
ssh_deletekeys: true
ssh_genkeytypes:
  - ed25519
ssh_keys:
  ed25519_private: |
    -----BEGIN OPENSSH PRIVATE KEY-----
    HOST aws-k1-host-key
    -----END OPENSSH PRIVATE KEY-----
  ed25519_public: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk1hostkey
disable_root: true
users:
  - name: admin
    gecos: fou-tunnel login
    shell: /bin/bash
    lock_passwd: true
    sudo: ALL=(ALL) NOPASSWD:ALL
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAmock
packages:
  - nftables
`;

test("user data: the host's own key as the only host key, the admin user with the stack's key and sudo, nftables; secret; a change replaces the instance", async () => {
    assert.equal(plain(res("aws-k1").inputs.userData), K1_USER_DATA);
    for (const name of ["aws-k1", "aws-k2", "aws-k3", "awsc-a1", "awsc-a2"]) {
        const i = res(name).inputs;
        assert.ok(Object.keys(i.userData).includes("4dabf18193072939515e22adb298388d"), `${name}: the user data holds a private key and must be secret`);
        assert.equal(
            plain(i.userData),
            cloudConfig({ user: "admin", authorizedKey: PUBLIC_KEY, hostPrivateKey: hostPrivate(`${name}-host-key`), hostPublicKey: hostPublic(`${name}-host-key`) }),
            name,
        );
        assert.equal(i.userDataReplaceOnChange, true, name);
        assert.equal(i.keyName, undefined, name);
    }
    // What cloud-init reads (YAML 1.1 there; the document uses nothing where 1.1 and 1.2 differ).
    const doc = YAML.parse(plain(res("aws-k2").inputs.userData));
    assert.deepEqual(doc.ssh_keys, { ed25519_private: hostPrivate("aws-k2-host-key"), ed25519_public: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk2hostkey" });
    assert.deepEqual([doc.ssh_deletekeys, doc.ssh_genkeytypes, doc.disable_root], [true, ["ed25519"], true]);
    assert.deepEqual(doc.users, [
        { name: "admin", gecos: "fou-tunnel login", shell: "/bin/bash", lock_passwd: true, sudo: "ALL=(ALL) NOPASSWD:ALL", ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAmock"] },
    ]);
    assert.deepEqual(doc.packages, ["nftables"]);
    assert.deepEqual(Object.keys(doc).sort(), ["disable_root", "packages", "ssh_deletekeys", "ssh_genkeytypes", "ssh_keys", "users"]);
    // Another user, from awsSshUser.
    assert.match(cloudConfig({ user: "ubuntu", authorizedKey: "ssh-ed25519 AAAA c", hostPrivateKey: "k", hostPublicKey: "ssh-ed25519 BBBB d\n" }), /\n {2}ed25519_public: ssh-ed25519 BBBB\n[^]*\n {2}- name: ubuntu\n/);
    assert.equal(publicKeyLine("ssh-ed25519 AAAA comment\n"), "ssh-ed25519 AAAA");
});
