import { Ip, cidrContains, formatCidr, formatIp, lastAddress, parseIp } from "../lib/inet";
import { checkHostName } from "../lib/validate";
import { FIRST_HOST_OFFSET, defaultHostAddress } from "./defaults";
import { Context, HostRec, Hosts } from "./records";
import { ExternalRead, checkExternalAddresses, readExternal } from "./external";
import { KERNEL_NOT_HERE, readKernel } from "./kernel";
import { HOST_KEYS_AWS, HOST_KEYS_LOCAL, HOST_KEYS_SSH, checkKeys, readBool } from "./schema";
import { localUnderlays, readLocalUnderlay } from "./localUnderlay";
import { SshOwners, readSshHost, secretKeyMessage } from "./sshHosts";
import { YMap, got, str } from "./yaml";

/**
 * The hosts section: a list of at least 2 hosts, each with a unique name and, on local stacks, an
 * address on the bridge; on ssh stacks, how to log in (sshHosts.ts). A host with `external:` is a
 * far end the stack does not manage, on any stack but aws (external.ts).
 */
export function readHosts(cx: Context): Hosts {
    const { r, root } = cx;
    const hosts: Hosts = { byName: new Map(), list: [], written: new Set(), broken: false };
    const e = root.entries.get("hosts");
    if (!e) {
        r.add(root.pos, "hosts", "required: a list of at least 2 hosts, each like {name: k1}");
        hosts.broken = true;
        return hosts;
    }
    if (e.value.kind !== "seq") {
        r.add(e.value.pos, "hosts", `must be a list of at least 2 hosts, each like {name: k1} (got ${got(e.value)})`);
        hosts.broken = true;
        return hosts;
    }
    if (e.value.items.length < 2) {
        r.add(e.value.pos, "hosts", `must list at least 2 hosts, since a tunnel joins two (got ${e.value.items.length})`);
    }
    const addressOwner = new Map<bigint, { name: string; line: number }>();
    const nameOwner = new Map<string, { path: string; line: number }>();
    const sshOwners: SshOwners = { underlay: new Map(), login: new Map() };
    const underlays6 = localUnderlays();
    const externals: ExternalRead[] = [];
    e.value.items.forEach((item, i) => {
        const path = `hosts[${i}]`;
        if (item.kind !== "map") {
            r.add(item.pos, path, `must be a mapping like {name: k1} (got ${got(item)})`);
            hosts.broken = true;
            return;
        }
        if (item.entries.has("external")) {
            readExternalHost(cx, hosts, item, i, nameOwner, externals);
            return;
        }
        const local = cx.kind === "local";
        checkKeys(r, item, path, local ? "host" : `${cx.kind} host`, local ? HOST_KEYS_LOCAL : cx.kind === "aws" ? HOST_KEYS_AWS : HOST_KEYS_SSH, (key) => hostKeyMessage(cx.kind, key));
        const name = hostName(cx, hosts, item, path, nameOwner);
        let fou = true;
        const fouE = local ? item.entries.get("fou") : undefined;
        if (fouE) {
            const b = readBool(fouE.value);
            if ("error" in b) {
                r.add(fouE.value.pos, `${path}.fou`, b.error);
            } else {
                fou = b.value;
            }
        }
        if (cx.kind === "ssh") {
            const read = readSshHost(cx, item, path, name, sshOwners);
            const kernel = readKernel(cx.r, item, path);
            if (name) {
                const h: HostRec = {
                    name,
                    index: i,
                    fou,
                    ...(read.underlay ? { address: read.underlay } : {}),
                    ...(read.ssh ? { ssh: read.ssh } : {}),
                    ...(read.device ? { device: read.device } : {}),
                    ...(kernel ? { kernel } : {}),
                };
                hosts.byName.set(name, h);
                hosts.list.push(h);
            }
            return;
        }
        const address = hostAddress(cx, item, path, i, name, addressOwner);
        const underlay = local ? readLocalUnderlay(cx, item, path, name, underlays6) : undefined;
        if (name) {
            const h: HostRec = { name, index: i, address, fou, ...(underlay ? { underlay } : {}) };
            hosts.byName.set(name, h);
            hosts.list.push(h);
        }
    });
    checkExternalAddresses(cx, hosts.list.filter((h) => !h.external), externals);
    return hosts;
}

/**
 * A far end (`external:`), listed even when its address is wrong (reported): its tunnels are
 * still checked.
 */
function readExternalHost(
    cx: Context,
    hosts: Hosts,
    item: Parameters<typeof readExternal>[1],
    i: number,
    nameOwner: Map<string, { path: string; line: number }>,
    externals: ExternalRead[],
): void {
    const path = `hosts[${i}]`;
    const name = hostName(cx, hosts, item, path, nameOwner);
    const x = readExternal(cx, item, path, name);
    if (x) externals.push(x);
    if (name) {
        const h: HostRec = { name, index: i, fou: true, external: true, ...(x ? { address: x.ip } : {}) };
        hosts.byName.set(name, h);
        hosts.list.push(h);
    }
}

/** Why a key of another host kind is not allowed here, when it is one. */
function hostKeyMessage(kind: "local" | "aws" | "ssh", key: string): string | undefined {
    if (key === "kernel" && kind !== "ssh") {
        return KERNEL_NOT_HERE[kind];
    }
    if (kind === "aws") {
        if (key === "address") return "not allowed for aws hosts: EC2 assigns the addresses";
        if (key === "fou") return "not allowed for aws hosts: only local VMs can be booted with fou made unusable";
    }
    if (kind === "ssh") {
        if (key === "address") return "not allowed for ssh hosts: the login address is ssh.address, and the tunnel's address (when it differs) underlayAddress";
        if (key === "fou") return "not allowed for ssh hosts: only local VMs can be booted with fou made unusable";
        return secretKeyMessage(key);
    }
    if (HOST_KEYS_SSH.includes(key) && key !== "name") {
        return `only for ssh hosts (fou-tunnel:hosts: ssh): ${kind === "local" ? "local VMs" : "EC2 instances"} are reached with the stack's own key, on the address it gives them`;
    }
    return undefined;
}

function hostName(cx: Context, hosts: Hosts, item: YMap, path: string, nameOwner: Map<string, { path: string; line: number }>): string | undefined {
    const { r } = cx;
    const e = item.entries.get("name");
    if (!e) {
        r.add(item.pos, `${path}.name`, "required: the host's name, like k1");
        hosts.broken = true;
        return undefined;
    }
    const v = e.value.kind === "scalar" ? e.value.value : got(e.value);
    if (typeof v === "string") {
        hosts.written.add(v);
    }
    if (!r.check(e.value.pos, `${path}.name`, checkHostName(`${path}.name`, v))) {
        return undefined;
    }
    const name = v as string;
    const first = nameOwner.get(name);
    if (first) {
        r.add(e.value.pos, `${path}.name`, `host name ${name} is already used by ${first.path} (line ${first.line})`);
        return undefined;
    }
    nameOwner.set(name, { path, line: r.line(e.value.pos) });
    return name;
}

/** A local host's address, as written or defaulted (network + 151 + index); undefined on aws or when invalid. */
function hostAddress(cx: Context, item: YMap, path: string, i: number, name: string | undefined, addressOwner: Map<bigint, { name: string; line: number }>): Ip | undefined {
    const { r, underlay } = cx;
    if (!underlay) {
        return undefined;
    }
    const e = item.entries.get("address");
    const pos = e ? e.value.pos : item.pos;
    let ip: Ip | undefined;
    if (e) {
        const p = parseIp(str(e.value));
        if (p?.family !== 4) {
            r.add(pos, `${path}.address`, `must be an IPv4 address like 198.51.100.151 (got ${got(e.value)})`);
            return undefined;
        }
        ip = p;
    } else {
        ip = defaultHostAddress(underlay, i);
    }
    const a = formatIp(ip);
    const what = e ? a : `the default address ${a} (the underlay network + ${FIRST_HOST_OFFSET + BigInt(i)})`;
    const fix = e ? "" : "; set address";
    const first = addressOwner.get(ip.value);
    const bad = !cidrContains(underlay, ip)
        ? `${what} is outside the underlay network ${cx.underlayText}${fix}`
        : ip.value === underlay.network
          ? `${what} is the address of the underlay network ${formatCidr(underlay)} itself; hosts need a host address${fix}`
          : ip.value === underlay.address
            ? `${what} is the gateway's own address (this machine on the VM bridge)${fix}`
            : ip.value === lastAddress(underlay)
              ? `${what} is the broadcast address of the underlay network ${formatCidr(underlay)}${fix}`
              : first
                ? `${what} is already the address of ${first.name} (line ${first.line}); each host needs its own${fix}`
                : undefined;
    if (bad) {
        r.add(pos, `${path}.address`, bad);
        return undefined;
    }
    addressOwner.set(ip.value, { name: name ?? path, line: r.line(pos) });
    return ip;
}
