import { checkPrefix } from "../lib/inet";
import { parseBool, throwIfInvalid } from "../lib/validate";

/**
 * Settings of the `aws` hosts (one EC2 instance per host of the topology). The region is the AWS
 * provider's own `aws:region`, not one of ours; the hosts' names and the tunnels between them come
 * from the topology (`fou-tunnel:topology`), not from these settings.
 */
export interface AwsSettings {
    /** EC2 instance type of every host (x86_64, matching the AMI lookup). */
    readonly instanceType: string;
    /** A fixed AMI id; when set, the owner/name lookup is skipped. */
    readonly ami?: string;
    /** Owner of the looked-up AMI: an account id, `amazon`, `aws-marketplace` or `self`. */
    readonly amiOwner: string;
    /** Name filter of the looked-up AMI (`*` and `?` wildcards); the most recent match wins. */
    readonly amiNameFilter: string;
    /** `default`: the region's default VPC; `create`: a VPC of our own (10.99.0.0/16). */
    readonly vpc: "default" | "create";
    /** The only network SSH is allowed from, as a prefix (a bare address becomes /32). */
    readonly operatorCidr: string;
    /** The login user the user data makes (sudo without a password, the stack's key): every SSH login, the tunnel steps' and the operator's. */
    readonly sshUser: string;
    /** Routes beyond the GWIPs need EC2's source/destination check off on every instance. */
    readonly routesBeyondGwips: boolean;
}

/**
 * Debian 12's official AMIs (the Debian cloud team's account). They boot the `cloud-amd64`
 * kernel, whose package ships `net/ipv4/fou.ko` and `ipip.ko` (see docs/aws.md); releases are
 * named `debian-12-amd64-<date>-<build>`, so `20*` leaves out daily and dev builds.
 */
export const DEBIAN_12 = { owner: "136693071363", nameFilter: "debian-12-amd64-20*", sshUser: "admin" } as const;

/** The settings with nothing but the operator's network set. */
export const AWS_DEFAULTS: Omit<AwsSettings, "operatorCidr"> = {
    instanceType: "t3.micro",
    amiOwner: DEBIAN_12.owner,
    amiNameFilter: DEBIAN_12.nameFilter,
    vpc: "default",
    sshUser: DEBIAN_12.sshUser,
    routesBeyondGwips: false,
};

/**
 * Parses the aws settings from a key lookup (pure, like config.ts's `parseSettings`): every
 * problem is collected and thrown as one `FouInputError` naming each key, before anything is
 * declared. `ns` prefixes the keys in messages.
 */
export function parseAwsSettings(get: (key: string) => unknown, ns = "fou-tunnel"): AwsSettings {
    const key = (k: string) => `${ns}:${k}`;
    const problems: (string | undefined)[] = [];

    if (get("awsRegion") !== undefined) {
        problems.push(`${key("awsRegion")} is not a setting of this program; set the region with \`pulumi config set aws:region <region>\``);
    }

    const instanceType = get("awsInstanceType") ?? AWS_DEFAULTS.instanceType;
    if (typeof instanceType !== "string" || !/^[a-z][a-z0-9-]{0,23}\.[a-z0-9]{1,16}$/.test(instanceType)) {
        problems.push(`${key("awsInstanceType")} must be an EC2 instance type like t3.micro (got ${JSON.stringify(instanceType)})`);
    }

    const { ami, amiOwner, amiNameFilter } = parseAmiKeys(get, key, problems);

    const vpc = get("awsVpc") ?? AWS_DEFAULTS.vpc;
    if (vpc !== "default" && vpc !== "create") {
        problems.push(`${key("awsVpc")} must be "default" (the region's default VPC) or "create" (a new VPC 10.99.0.0/16) (got ${JSON.stringify(vpc)})`);
    }

    const operatorCidr = parseOperatorCidr(get("awsOperatorCidr"), key("awsOperatorCidr"), problems);

    if (get("awsHostNames") !== undefined) {
        problems.push(
            `${key("awsHostNames")} is no longer a setting of this program; name the hosts (and the tunnels between them) in the topology file, ${key("topology")}, and remove ${key("awsHostNames")} from the stack`,
        );
    }

    const sshUser = get("awsSshUser") ?? AWS_DEFAULTS.sshUser;
    if (typeof sshUser !== "string" || !/^[a-z_][a-z0-9_-]{0,31}$/.test(sshUser)) {
        problems.push(`${key("awsSshUser")} must be a user name like admin or ubuntu (got ${JSON.stringify(sshUser)})`);
    } else if (sshUser === "root") {
        problems.push(
            `${key("awsSshUser")} cannot be root: the instances' user data makes this user (with sudo) and leaves root without any key; use the image's admin user (admin on Debian)`,
        );
    }

    const routesBeyondGwips = parseBool(get("awsRoutesBeyondGwips"), AWS_DEFAULTS.routesBeyondGwips, key("awsRoutesBeyondGwips"), problems);

    throwIfInvalid(problems);
    return {
        instanceType: instanceType as string,
        ...(ami === undefined ? {} : { ami }),
        amiOwner,
        amiNameFilter,
        vpc: vpc as "default" | "create",
        operatorCidr,
        sshUser: sshUser as string,
        routesBeyondGwips,
    };
}

/** The image keys, `awsAmi`, `awsAmiOwner` and `awsAmiNameFilter`; their problems go to `problems`. */
function parseAmiKeys(
    get: (key: string) => unknown,
    key: (k: string) => string,
    problems: (string | undefined)[],
): { ami?: string; amiOwner: string; amiNameFilter: string } {
    const ami = get("awsAmi");
    if (ami !== undefined && (typeof ami !== "string" || !/^ami-([0-9a-f]{8}|[0-9a-f]{17})$/.test(ami))) {
        problems.push(`${key("awsAmi")} must be an AMI id: "ami-" and 8 or 17 hex digits (got ${JSON.stringify(ami)})`);
    }

    // Config lookups that JSON-parse values turn an account id into a number, dropping the
    // leading zero of e.g. Canonical's 099720109477; account ids are always 12 digits.
    const rawOwner = get("awsAmiOwner") ?? AWS_DEFAULTS.amiOwner;
    const amiOwner = typeof rawOwner === "number" && Number.isInteger(rawOwner) && rawOwner >= 0 && rawOwner < 1e12 ? String(rawOwner).padStart(12, "0") : rawOwner;
    if (typeof amiOwner !== "string" || !/^(\d{12}|amazon|aws-marketplace|self)$/.test(amiOwner)) {
        problems.push(`${key("awsAmiOwner")} must be a 12-digit account id, "amazon", "aws-marketplace" or "self" (got ${JSON.stringify(amiOwner)})`);
    }

    const amiNameFilter = get("awsAmiNameFilter") ?? AWS_DEFAULTS.amiNameFilter;
    // AMI names allow letters, digits and ( ) [ ] space . / - ' @ _; a filter adds * and ?.
    if (typeof amiNameFilter !== "string" || !/^[A-Za-z0-9()[\] ./'@_*?-]{1,128}$/.test(amiNameFilter) || /^[*?]+$/.test(amiNameFilter)) {
        problems.push(
            `${key("awsAmiNameFilter")} must be an AMI name pattern like debian-12-amd64-20* (up to 128 of A-Z a-z 0-9 ( ) [ ] . / - ' @ _ space * ?, not only wildcards) (got ${JSON.stringify(amiNameFilter)})`,
        );
    }
    return {
        ...(ami === undefined ? {} : { ami: ami as string }),
        amiOwner: amiOwner as string,
        amiNameFilter: amiNameFilter as string,
    };
}

/** `awsOperatorCidr` as a prefix (a bare address becomes /32); "" with a problem when it is missing, bad or /0. */
function parseOperatorCidr(rawCidr: unknown, name: string, problems: (string | undefined)[]): string {
    if (rawCidr === undefined) {
        problems.push(`${name} is required: the IPv4 prefix SSH is allowed from, like 203.0.113.0/24 (your own address as /32)`);
        return "";
    }
    const bad = checkPrefix(name, rawCidr);
    if (bad !== undefined) {
        problems.push(bad);
        return "";
    }
    const operatorCidr = String(rawCidr).includes("/") ? String(rawCidr) : `${rawCidr}/32`;
    if (operatorCidr.endsWith("/0")) {
        problems.push(`${name} ${String(rawCidr)} would open SSH to every address; give the network you run pulumi from`);
    }
    return operatorCidr;
}
