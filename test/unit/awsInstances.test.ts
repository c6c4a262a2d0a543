/**
 * The EC2 instances and what the tunnel components see of them: AMI, type, keys, the TunnelHosts
 * (addresses, connection, readiness), the outputs, and commands deleted and replaced with their
 * instance.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { recorded, valueOf } from "./mocks";
import { plain } from "./secretInputs";
import { AMI, OVERRIDE_AMI, PRIVATE_KEY, calls, declareAwsHosts, options, res, viaCreated, viaDefault } from "./awsFixtures";

declareAwsHosts();

test("the AMI is the newest x86_64 Debian 12 release image from Debian's account, unless awsAmi overrides it", () => {
    const amiCalls = calls.filter((c) => c.token === "aws:ec2/getAmi:getAmi");
    assert.equal(amiCalls.length, 1, "the override looks nothing up");
    const q = amiCalls[0].inputs;
    assert.deepEqual(q.owners, ["136693071363"]);
    assert.equal(q.mostRecent, true);
    assert.deepEqual(
        Object.fromEntries(q.filters.map((f: any) => [f.name, f.values])),
        { name: ["debian-12-amd64-20*"], architecture: ["x86_64"], "virtualization-type": ["hvm"], "root-device-type": ["ebs"] },
    );
    assert.equal(res("aws-k1").inputs.ami, AMI);
    assert.equal(res("aws-k2").inputs.ami, AMI);
    assert.equal(res("aws-k3").inputs.ami, AMI);
    assert.equal(res("awsc-a1").inputs.ami, OVERRIDE_AMI);
    assert.equal(res("awsc-a2").inputs.ami, OVERRIDE_AMI);
});

test("the stack's SSH key and every host's host key are ED25519 tls keys; no EC2 key pair (the login key comes with the user data)", async () => {
    for (const k of ["aws-ssh-key", "aws-k1-host-key", "aws-k2-host-key", "aws-k3-host-key", "awsc-a1-host-key", "awsc-a2-host-key"]) {
        assert.equal(res(k).inputs.algorithm, "ED25519", k);
    }
    assert.ok(!recorded.some((r) => r.type === "aws:ec2/keyPair:KeyPair"));
    assert.deepEqual(await valueOf(viaDefault.hostKeys), {
        k1: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk1hostkey",
        k2: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk2hostkey",
        k3: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk3hostkey",
    });
});

test("instances: AMI, type, one subnet, the shared group and its own, a public address, IMDSv2, source/dest check per routing", () => {
    assert.equal(recorded.filter((r) => r.type === "aws:ec2/instance:Instance" && r.parent === "aws").length, 3, "one instance per host");
    assert.equal(recorded.filter((r) => r.type === "aws:ec2/instance:Instance" && r.parent === "awsc").length, 2, "one instance per host");
    for (const [name, type, subnet, check] of [
        ["aws-k1", "t3.micro", "subnet-default-us-east-1a", true],
        ["aws-k2", "t3.micro", "subnet-default-us-east-1a", true],
        ["aws-k3", "t3.micro", "subnet-default-us-east-1a", true],
        ["awsc-a1", "t3.small", "awsc-subnet-id", false],
        ["awsc-a2", "t3.small", "awsc-subnet-id", false],
    ] as const) {
        const component = name.split("-")[0];
        const i = res(name).inputs;
        assert.equal(i.instanceType, type, name);
        assert.equal(i.subnetId, subnet, name);
        assert.deepEqual(i.vpcSecurityGroupIds, [`${component}-sg-id`, `${name}-sg-id`], name);
        assert.equal(i.sourceDestCheck, check, name);
        assert.equal(i.associatePublicIpAddress, true, name);
        assert.equal(i.metadataOptions.httpTokens, "required", name);
    }
});

test("TunnelHosts: one per host in topology order, private IP as underlay, public IP in the connection, device from the poll, ready after the poll", async () => {
    const hosts = viaDefault.hosts;
    assert.deepEqual(
        hosts.map((h) => h.name),
        ["k1", "k2", "k3"],
    );
    assert.deepEqual(await Promise.all(hosts.map((h) => valueOf(h.underlayAddress))), ["172.31.5.11", "172.31.5.12", "172.31.5.13"]);
    assert.deepEqual(await Promise.all(hosts.map((h) => valueOf(h.device))), ["ens5", "ens5", "ens5"]);
    const conns = await Promise.all(hosts.map((h) => valueOf(h.connection)));
    assert.deepEqual(
        conns.map((c) => [c.host, c.user, c.hostKey, c.dialErrorLimit, c.perDialTimeout]),
        [
            ["198.51.100.11", "admin", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk1hostkey", 5, 10],
            ["198.51.100.12", "admin", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk2hostkey", 5, 10],
            ["198.51.100.13", "admin", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAhostawsk3hostkey", 5, 10],
        ],
    );
    assert.equal(await valueOf(conns[0].privateKey as pulumi.Input<string>), PRIVATE_KEY);
    for (const h of [...hosts, ...viaCreated.hosts]) {
        assert.equal(await pulumi.isSecret(pulumi.output(h.connection)), true, `${h.name}: the connection is secret`);
        assert.equal(h.sudo, true, `${h.name}: the steps run through sudo`);
    }
    assert.deepEqual(
        hosts.map((h) => (h.readyAfter ?? []).map((r) => (r as any).__name)),
        [["aws-k1-poll"], ["aws-k2-poll"], ["aws-k3-poll"]],
    );
    assert.deepEqual(await Promise.all(hosts.map((h) => valueOf(h.identity as pulumi.Input<string>))), ["aws-k1-id", "aws-k2-id", "aws-k3-id"]);
    assert.deepEqual(
        viaCreated.hosts.map((h) => h.name),
        ["a1", "a2"],
    );
});

test("the tunnel commands are deleted with their instance, and a replaced instance replaces them (identity = instance id)", async () => {
    viaDefault.hosts.forEach((h, i) => assert.equal(h.deletedWith, viaDefault.instances[i], h.name));
    for (const [cmd, instance] of [
        ["k1-prep-kernel", "aws-k1"],
        ["k2-prep-kernel", "aws-k2"],
        ["fou-k1-link", "aws-k1"],
        ["fou-k2-link", "aws-k2"],
    ]) {
        assert.equal((options.get(cmd)?.deletedWith as any)?.__name, instance, cmd);
        assert.ok(plain(res(cmd).inputs.triggers).includes(`${instance}-id`), `${cmd} lists the instance id in its triggers`);
    }
});

test("the private key is secret, in the component's output and in every connection sent", async () => {
    assert.equal(await pulumi.isSecret(viaDefault.privateKey), true);
    assert.equal(await valueOf(viaDefault.privateKey), PRIVATE_KEY);
    for (const name of ["aws-k1-poll", "aws-k2-poll", "aws-k3-poll"]) {
        const c = res(name).inputs.connection;
        assert.ok(Object.keys(c).includes("4dabf18193072939515e22adb298388d"), `${name}: ${JSON.stringify(c)}`);
    }
});

test("outputs: public and private IPs by host, and ssh commands as the distribution's user", async () => {
    assert.deepEqual(await valueOf(viaDefault.publicIps), { k1: "198.51.100.11", k2: "198.51.100.12", k3: "198.51.100.13" });
    assert.deepEqual(await valueOf(viaDefault.privateIps), { k1: "172.31.5.11", k2: "172.31.5.12", k3: "172.31.5.13" });
    assert.deepEqual(await valueOf(viaDefault.sshCommands), {
        k1: "ssh -i key.pem admin@198.51.100.11",
        k2: "ssh -i key.pem admin@198.51.100.12",
        k3: "ssh -i key.pem admin@198.51.100.13",
    });
    assert.deepEqual(await valueOf(viaCreated.privateIps), { a1: "10.99.1.21", a2: "10.99.1.22" });
    assert.equal(await valueOf(viaDefault.amiId), AMI);
    assert.equal(await valueOf(viaCreated.amiId), OVERRIDE_AMI);
});

test("the tunnel components run unchanged on the EC2 hosts: private addresses, the polled device", () => {
    // The step's create, as it reaches sudo -n /bin/sh on stdin.
    assert.equal(res("fou-k1-link").inputs.createLine, "sudo -n /bin/sh -s create");
    const link = res("fou-k1-link").inputs.create as string;
    // The words of the `ip link add` line, quoting aside (how the link quotes is its own business).
    const add = link
        .split("\n")
        .find((l) => l.startsWith("ip link add "))
        ?.replace(/'/g, "")
        .split(" ");
    assert.ok(add, link);
    const after = (word: string) => add[add.indexOf(word) + 1];
    assert.deepEqual(
        [add[3], after("remote"), after("local"), after("dev"), after("encap-dport")],
        ["ftok2", "172.31.5.12", "172.31.5.11", "ens5", "5555"],
        link,
    );
    assert.equal(plain(res("k1-prep-kernel").inputs.connection).host, "198.51.100.11");
});
