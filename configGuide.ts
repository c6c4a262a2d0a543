/**
 * The guide without a topology file: its two hosts and one tunnel from the stack's own keys
 * (`port`, `gwips`, `localVms`, `firewall`), checked under those keys.
 */
import { LocalSettings, LocalVmSettings } from "./hosts/localConfig";
import { checkIpv4, cidrContains, notUnicast, parseCidr, parseIp } from "./lib/inet";
import { checkPort, parseBool } from "./lib/validate";
import { DEFAULT_PORT, GUIDE_GWIPS, Topology, TopologyHost, guideTopology } from "./topology";
import { DEFAULT_LOCAL, num, parseLocal } from "./configLocal";
import type { ConfigReader } from "./configReader";

/**
 * The guide without a topology file: two hosts and one tunnel from the stack's own keys (port,
 * gwips, localVms), checked under those keys and mapped to the model directly. The rules are a
 * topology file's for the same values.
 */
export function parseGuide(reader: ConfigReader): { topology?: Topology; local?: LocalSettings } {
    const { get, key, problems, hosts, ns } = reader;
    const port = num(get("port") ?? DEFAULT_PORT);
    problems.push(checkPort(key("port"), port));
    const gwips = get("gwips") ?? [...GUIDE_GWIPS];
    if (!Array.isArray(gwips) || gwips.length !== 2) {
        problems.push(`${key("gwips")} must be a list of two IPv4 addresses, one per host (got ${JSON.stringify(gwips)})`);
    } else {
        gwips.forEach((g, i) => problems.push(checkGwip(`${key("gwips")}[${i}]`, g)));
        if (gwips[0] === gwips[1]) {
            problems.push(`${key("gwips")} gives both hosts ${gwips[0]}; each host needs its own GWIP`);
        }
    }
    const local = hosts === "aws" ? undefined : parseLocal(reader, true);
    if (local && Array.isArray(gwips)) {
        const lan = parseCidr(local.gateway, true);
        gwips.forEach((g, i) => {
            const ip = parseIp(g);
            if (lan && ip?.family === 4 && cidrContains(lan, ip)) {
                problems.push(`${key("gwips")}[${i}] ${g} lies in the underlay network ${local.gateway}; GWIPs must be outside it`);
            }
        });
    }
    if (problems.some((p) => p !== undefined) || (hosts !== "local" && hosts !== "aws")) {
        return { local };
    }
    const vms = local?.vms ?? DEFAULT_LOCAL.vms;
    const host = (v: LocalVmSettings): TopologyHost => (local ? { name: v.name, address: v.address, fou: v.fou } : { name: v.name, fou: true });
    const topology = guideTopology({
        source: `${ns} stack settings (the guide's two hosts)`,
        hosts: [host(vms[0]), host(vms[1])],
        port: port as number,
        gwips: [(gwips as string[])[0], (gwips as string[])[1]],
        firewall: parseBool(get("firewall"), true, key("firewall"), problems),
    });
    return { topology, local };
}

/** A GWIP of the guide: a unicast IPv4 address (not in 0.0.0.0/8 either, as in a topology file). */
function checkGwip(key: string, value: unknown): string | undefined {
    const bad = checkIpv4(key, value);
    const special = bad === undefined ? notUnicast(parseIp(value)!) : undefined;
    return special ? `${key} ${String(value)} is ${special}; a GWIP must be a unicast address` : bad;
}
