/**
 * What an AwsHosts is given, and its checks: the host names and the UDP rules between them, each
 * rule one ingress resource whose name must be unique.
 */
import { checkHostName, checkPort } from "../lib/validate";
import { AwsSettings } from "./awsConfig";

export interface AwsHostsArgs {
    readonly settings: AwsSettings;
    /** Host names, in topology order (≥ 2, unique, validated by checkHostName). */
    readonly hostNames: string[];
    /** One entry per tunnel end: `to` accepts UDP `port` from `from`'s private address. */
    readonly udpRules: { readonly to: string; readonly from: string; readonly port: number }[];
}

/** One distinct UDP ingress rule; see {@link udpRuleName}. */
export interface AwsUdpRule {
    readonly to: string;
    readonly from: string;
    readonly port: number;
}

/** The rule's resource name: stable as long as its hosts and port are. */
export function udpRuleName(component: string, rule: AwsUdpRule): string {
    return `${component}-${rule.to}-from-${rule.from}-udp-${rule.port}`;
}

/**
 * Every problem with the hosts and rules an {@link AwsHosts} named `name` is given, as messages
 * (none when valid), and the distinct valid rules in first-seen order (a repeated one counts once).
 */
export function checkAwsHostsArgs(name: string, hostNames: unknown, udpRules: unknown): { problems: string[]; rules: AwsUdpRule[] } {
    const at = `AwsHosts ${name}`;
    const problems: (string | undefined)[] = [];
    const names = Array.isArray(hostNames) ? (hostNames as unknown[]) : [];
    if (!Array.isArray(hostNames) || hostNames.length < 2) {
        problems.push(`${at}: hostNames must list at least two hosts (got ${JSON.stringify(hostNames)})`);
    }
    names.forEach((n, i) => problems.push(checkHostName(`${at}: hostNames[${i}]`, n)));
    const seen = new Set<unknown>();
    for (const n of names) {
        if (seen.has(n)) {
            problems.push(`${at}: hostNames lists ${JSON.stringify(n)} more than once; every host needs its own name`);
        }
        seen.add(n);
    }
    const known = names.map(String).join(", ");

    const rules = new Map<string, AwsUdpRule>();
    if (!Array.isArray(udpRules)) {
        problems.push(`${at}: udpRules must be a list of {to, from, port} (got ${JSON.stringify(udpRules)})`);
    } else {
        udpRules.forEach((r: unknown, i) => {
            const rule = (typeof r === "object" && r !== null ? r : {}) as Partial<Record<keyof AwsUdpRule, unknown>>;
            const found: (string | undefined)[] = [];
            for (const end of ["to", "from"] as const) {
                if (!names.includes(rule[end])) {
                    found.push(`${at}: udpRules[${i}].${end} ${JSON.stringify(rule[end])} is not one of the hosts (${known})`);
                }
            }
            if (rule.to !== undefined && rule.to === rule.from) {
                found.push(`${at}: udpRules[${i}] admits ${String(rule.to)} to itself; a rule's to and from must be different hosts`);
            }
            found.push(checkPort(`${at}: udpRules[${i}].port`, rule.port));
            if (found.every((p) => p === undefined)) {
                const ok: AwsUdpRule = { to: rule.to as string, from: rule.from as string, port: rule.port as number };
                rules.set(JSON.stringify([ok.to, ok.from, ok.port]), ok);
            }
            problems.push(...found);
        });
    }
    // Host names may contain '-', so two different rules could spell the same resource name.
    const byName = new Map<string, AwsUdpRule>();
    for (const r of rules.values()) {
        const other = byName.get(udpRuleName(name, r));
        if (other) {
            problems.push(
                `${at}: the rules to ${r.to} from ${r.from} and to ${other.to} from ${other.from} (port ${r.port}) would share the resource name ${udpRuleName(name, r)}; rename a host`,
            );
        }
        byName.set(udpRuleName(name, r), r);
    }
    return { problems: problems.filter((p): p is string => p !== undefined), rules: [...rules.values()] };
}
