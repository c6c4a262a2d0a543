/**
 * The local VMs' stack keys: the VM network (`localGateway`), their memory (`localVmMemory`) and,
 * for the guide without a topology file, its two VMs (`localVms`); checked, and their defaults.
 */
import { LocalSettings, LocalVmSettings } from "./hosts/localConfig";
import { checkIpv4, cidrContains, formatCidr, formatIp, lastAddress, parseCidr, parseIp } from "./lib/inet";
import { checkHostName, checkInt, parseBool } from "./lib/validate";
import { DEFAULT_UNDERLAY, GUIDE_HOSTS, defaultHostAddress, defaultUnderlay } from "./topology";
import type { ConfigReader } from "./configReader";

/** The guide's two hosts on the default bridge (topology/defaults.ts): k1 .151, k2 .152, this machine .1/24. */
export const DEFAULT_LOCAL: LocalSettings = {
    gateway: DEFAULT_UNDERLAY,
    vms: GUIDE_HOSTS.map((name, i) => ({ name, address: formatIp(defaultHostAddress(defaultUnderlay(), i)), fou: true })),
    memoryMb: 384,
};

/** The VM network and memory; with `withVms`, the two VMs of `localVms` too (else left empty). */
export function parseLocal(reader: ConfigReader, withVms: boolean): LocalSettings | undefined {
    const { get, key, problems } = reader;
    const gateway = get("localGateway") ?? DEFAULT_LOCAL.gateway;
    const memoryMb = num(get("localVmMemory") ?? DEFAULT_LOCAL.memoryMb);
    problems.push(checkInt(key("localVmMemory"), memoryMb, 256, 8192));
    const written = parseCidr(gateway);
    const lan = written?.family === 4 ? written : undefined;
    if (lan === undefined || lan.length < 8 || lan.length > 30) {
        problems.push(`${key("localGateway")} must be this machine's address on the VM network with its length, like ${DEFAULT_UNDERLAY} (got ${JSON.stringify(gateway)})`);
    } else {
        problems.push(checkIpv4(key("localGateway"), formatIp({ family: 4, value: lan.address })));
    }
    if (!withVms) {
        return lan === undefined ? undefined : { gateway: String(gateway), vms: [], memoryMb: memoryMb as number };
    }
    const rawVms = get("localVms") ?? DEFAULT_LOCAL.vms;
    if (!Array.isArray(rawVms) || rawVms.length !== 2) {
        problems.push(`${key("localVms")} must list two VMs like [{"name":"k1","address":"198.51.100.151"}, …] (got ${JSON.stringify(rawVms)})`);
        return undefined;
    }
    const vms = rawVms.map((v: unknown, i): LocalVmSettings => {
        const at = `${key("localVms")}[${i}]`;
        const o = (typeof v === "object" && v !== null ? v : {}) as Record<string, unknown>;
        problems.push(checkHostName(`${at}.name`, o.name), checkIpv4(`${at}.address`, o.address));
        const ip = parseIp(o.address);
        if (lan && ip?.family === 4) {
            if (!cidrContains(lan, ip)) {
                problems.push(`${at}.address ${o.address} is outside the VM network ${gateway}`);
            } else if (ip.value === lan.address) {
                problems.push(`${at}.address ${o.address} is the gateway's own address`);
            } else if (ip.value === lan.network) {
                problems.push(`${at}.address ${o.address} is the address of the VM network ${formatCidr(lan)} itself; VMs need a host address`);
            } else if (ip.value === lastAddress(lan)) {
                problems.push(`${at}.address ${o.address} is the broadcast address of the VM network ${formatCidr(lan)}`);
            }
        }
        return { name: String(o.name), address: String(o.address), fou: parseBool(o.fou, true, `${at}.fou`, problems) };
    });
    if (vms[0].name === vms[1].name) {
        problems.push(`${key("localVms")}: both VMs are named "${vms[0].name}"`);
    }
    if (vms[0].address === vms[1].address) {
        problems.push(`${key("localVms")}: both VMs have address ${vms[0].address}`);
    }
    return { gateway: String(gateway), vms, memoryMb: memoryMb as number };
}

/** A config value of digits as the number it spells (a key set as a string); anything else as it is. */
export function num(v: unknown): unknown {
    return typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : v;
}
