import * as pulumi from "@pulumi/pulumi";
import { createHash } from "crypto";
import * as path from "path";
import { TunnelHost } from "../components/host";
import { UnderlayAddress } from "../components/underlayAddress";
import { TextDynamicResource } from "../lib/providerModule";
import { SSH_DIALS } from "../lib/sshLogin";
import { FleetFactory, byName } from "./fleet";
import { LocalSettings, LocalVmSettings } from "./localConfig";
import { LocalKeyPair, stackKey, vmHostKeys } from "./localKeys";
import { NETWORK_PROVIDER_MODULE, NetworkInputs, VM_PROVIDER_MODULE, VmInputs, VmReport } from "./localProvider";

export { keygenScript, publicKeyOnly, splitKeyPair } from "./localKeys";
export { parseVmReport } from "./localProvider";
export type { VmReport } from "./localProvider";

export interface LocalVmsArgs {
    readonly settings: LocalSettings;
    /** Distinguishes this stack's bridge, taps and run directory from other stacks'. */
    readonly stackId: string;
}

/** Names on this machine derived from the stack, short enough for IFNAMSIZ. */
export function localNames(stackId: string, vmIndex: number) {
    const tag = createHash("sha256").update(stackId).digest("hex").slice(0, 6);
    return {
        bridge: `foubr-${tag}`,
        tap: `fou${vmIndex}-${tag}`,
        mac: `52:54:00:${tag.slice(0, 2)}:${tag.slice(2, 4)}:${(vmIndex + 1).toString(16).padStart(2, "0")}`,
        runDir: `/run/fou-tunnel/${tag}`,
    };
}

/** The repository root, where vm/ holds the image and VM scripts. */
const REPO = path.resolve(__dirname, "..");

type InputsOf<T> = { readonly [K in keyof T]: pulumi.Input<T[K]> };

/**
 * The bridge's dynamic resource: see `networkProvider` in localProvider.ts (its text made once:
 * lib/providerModule.ts).
 */
export class LocalNetwork extends TextDynamicResource {
    declare public readonly bridge: pulumi.Output<string>;
    constructor(name: string, args: InputsOf<NetworkInputs>, opts: pulumi.CustomResourceOptions = {}) {
        super(NETWORK_PROVIDER_MODULE, "LocalNetwork", name, { ...args }, opts);
    }
}

/** One VM's dynamic resource: see `vmProvider` in localProvider.ts. Its id is new at every (re)creation. */
export class LocalVm extends TextDynamicResource {
    declare public readonly report: pulumi.Output<VmReport>;
    constructor(name: string, args: InputsOf<VmInputs>, opts: pulumi.CustomResourceOptions = {}) {
        super(VM_PROVIDER_MODULE, "LocalVm", name, { ...args, report: undefined }, opts);
    }
}

/**
 * Two (or more) qemu VMs on this machine that boot Debian's kernel, which has fou and ipip, on a
 * bridge with TEST-NET addresses, reachable over SSH with a key made for this stack and a host
 * key made for each VM (both kept secret in the state; the host key is pinned). The bridge and
 * the VMs are dynamic resources whose refresh checks that they still exist: after a VM died or
 * this machine rebooted, `pulumi up --refresh` boots them again with the same host keys, and
 * every tunnel command on a new VM is replaced (a host's identity is its VM resource's id).
 */
export class LocalVms extends pulumi.ComponentResource {
    public readonly hosts: TunnelHost[];
    /** The stack's SSH private key (secret). */
    public readonly privateKey: pulumi.Output<string>;
    public readonly publicKey: pulumi.Output<string>;
    public readonly network: LocalNetwork;
    /** One per VM, in the order of the settings. */
    public readonly machines: LocalVm[];
    /** Per-VM boot report from vm.sh (pid, boot time, accelerator, kernel). */
    public readonly vms: pulumi.Output<Omit<VmReport, "hostKey">[]>;

    constructor(name: string, args: LocalVmsArgs, opts: pulumi.ComponentResourceOptions = {}) {
        super("fou:local:LocalVms", name, {}, opts);
        const { settings } = args;
        const names0 = localNames(args.stackId, 0);

        const key = stackKey(this, name);
        this.privateKey = key.privateKey;
        this.publicKey = key.publicKey;

        this.network = new LocalNetwork(
            `${name}-network`,
            { repo: REPO, bridge: names0.bridge, address: settings.gateway, runDir: names0.runDir },
            { parent: this, deleteBeforeReplace: true },
        );

        const prefixLength = settings.gateway.split("/")[1];
        const hostKeys = vmHostKeys(this, name, settings.vms);
        this.machines = settings.vms.map((vm, i) => {
            const n = localNames(args.stackId, i);
            return new LocalVm(
                `${name}-${vm.name}`,
                {
                    repo: REPO,
                    name: vm.name,
                    address: `${vm.address}/${prefixLength}`,
                    bridge: n.bridge,
                    tap: n.tap,
                    mac: n.mac,
                    stateDir: `${n.runDir}/${vm.name}`,
                    memoryMb: settings.memoryMb,
                    fou: vm.fou,
                    authorizedKey: this.publicKey,
                    hostPublicKey: hostKeys[i].publicKey,
                    hostPrivateKey: hostKeys[i].privateKey,
                    network: this.network.id,
                },
                { parent: this, dependsOn: [this.network], deleteBeforeReplace: true },
            );
        });

        this.hosts = settings.vms.map((vm, i) => {
            const host = vmTunnelHost(vm, this.machines[i], this.privateKey, hostKeys[i]);
            if (vm.underlay6 === undefined) return host;
            // The IPv6 underlay is the stack's to give, as the bridge is: on the VM before any tunnel step.
            const u = new UnderlayAddress(`${name}-${vm.name}`, { host, address: vm.underlay6, device: host.device as string, persist: vm.underlay6Persist }, { parent: this });
            return { ...host, underlayAddress: vm.underlay6, readyAfter: [...(host.readyAfter ?? []), u.command] };
        });
        // The report without the host key (it is in each connection): name, pid, boot time, accel.
        this.vms = pulumi.all(this.machines.map((m) => m.report)).apply((rs) => rs.map(({ hostKey: _, ...rest }) => rest));
        this.registerOutputs({ publicKey: this.publicKey, vms: this.vms });
    }
}

/** A VM as a TunnelHost: root over SSH with the stack's key, its host key pinned, ready once its VM runs. */
function vmTunnelHost(vm: LocalVmSettings, machine: LocalVm, privateKey: pulumi.Output<string>, hostKey: LocalKeyPair): TunnelHost {
    return {
        name: vm.name,
        underlayAddress: vm.address,
        device: "eth0",
        connection: {
            host: vm.address,
            user: "root",
            privateKey,
            // Known before the VM boots, and the same for every VM booted under this name.
            hostKey: hostKey.publicKey,
            // `vm.sh start` returns once sshd answers: a live VM needs one dial, a dead one fails fast.
            ...SSH_DIALS,
        },
        readyAfter: [machine],
        identity: machine.id,
        deletedWith: machine,
    };
}

/** The local fleet: the settings' VMs on this machine, reached with the key the stack makes. */
export const localFleet: FleetFactory = (s, stackId) => {
    const vms = new LocalVms("local", { settings: s.local, stackId });
    return {
        hosts: byName(vms.hosts),
        outputs: {
            underlay: Object.fromEntries(s.local.vms.map((vm) => [vm.name, vm.underlay6 ?? vm.address])),
            publicIps: {},
            sshCommands: Object.fromEntries(s.local.vms.map((vm) => [vm.name, `ssh -i fou-key.pem root@${vm.address}`])),
            vms: vms.vms,
            sshPrivateKey: vms.privateKey,
        },
    };
};

