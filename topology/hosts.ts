import { Ip, cidrContains, formatCidr, formatIp, lastAddress, parseIp } from "../lib/inet";
import { checkHostName } from "../lib/validate";
import { FIRST_HOST_OFFSET, defaultHostAddress } from "./defaults";
import { Context, HostRec, Hosts } from "./records";
import { HOST_KEYS_AWS, HOST_KEYS_LOCAL, checkKeys, readBool } from "./schema";
import { YMap, got, str } from "./yaml";

/** The hosts section: a list of at least 2 hosts, each with a unique name and, on local stacks, an address on the bridge. */
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
    e.value.items.forEach((item, i) => {
        const path = `hosts[${i}]`;
        if (item.kind !== "map") {
            r.add(item.pos, path, `must be a mapping like {name: k1} (got ${got(item)})`);
            hosts.broken = true;
            return;
        }
        const local = cx.underlay !== undefined;
        checkKeys(r, item, path, local ? "host" : "aws host", local ? HOST_KEYS_LOCAL : HOST_KEYS_AWS, (key) =>
            key === "address"
                ? "not allowed for aws hosts: EC2 assigns the addresses"
                : key === "fou"
                  ? "not allowed for aws hosts: only local VMs can be booted with fou made unusable"
                  : undefined,
        );
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
        const address = hostAddress(cx, item, path, i, name, addressOwner);
        if (name) {
            const h: HostRec = { name, index: i, address, fou };
            hosts.byName.set(name, h);
            hosts.list.push(h);
        }
    });
    return hosts;
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
