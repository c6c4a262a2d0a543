/**
 * The network an AwsHosts launches into: an availability zone that offers the instance type, and
 * the region's default VPC or (`awsVpc: create`) a VPC of the stack's own with an internet route.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { AwsSettings } from "./awsConfig";

/** The network of `awsVpc: create`; away from the GWIPs (10.10.10.0/24) and the default VPC (172.31.0.0/16). */
export const CREATED_VPC_CIDR = "10.99.0.0/16";
export const CREATED_SUBNET_CIDR = "10.99.1.0/24";

/** Where the instances go. */
export interface AwsNetwork {
    readonly vpcId: pulumi.Output<string>;
    readonly subnetId: pulumi.Output<string>;
    /** What must outlive the instances: their public addresses need the internet route. */
    readonly network: pulumi.Resource[];
}

/**
 * The first availability zone, in name order, that offers the instance type (not every zone
 * offers every type: us-east-1e has no t3), so the choice is stable from run to run.
 */
export function awsZone(parent: pulumi.Resource, name: string, instanceType: string): pulumi.Output<string> {
    return aws.ec2
        .getInstanceTypeOfferingsOutput(
            { locationType: "availability-zone", filters: [{ name: "instance-type", values: [instanceType] }] },
            { parent },
        )
        .locations.apply((zones) => {
            const sorted = [...zones].sort();
            if (sorted.length === 0) {
                throw new pulumi.RunError(`AwsHosts ${name}: no availability zone of this region offers ${instanceType}`);
            }
            return sorted[0];
        });
}

/** The VPC and subnet of `settings.vpc`, in the zone of {@link awsZone}; created resources are children of `parent`. */
export function awsNetwork(
    parent: pulumi.Resource,
    name: string,
    settings: AwsSettings,
    tags: (role: string) => Record<string, string>,
): AwsNetwork {
    const zone = awsZone(parent, name, settings.instanceType);
    if (settings.vpc === "default") {
        const vpcId = aws.ec2.getVpcOutput({ default: true }, { parent }).id;
        const subnetId = aws.ec2.getSubnetOutput({ vpcId, availabilityZone: zone, defaultForAz: true }, { parent }).id;
        return { vpcId, subnetId, network: [] };
    }
    const vpc = new aws.ec2.Vpc(
        `${name}-vpc`,
        { cidrBlock: CREATED_VPC_CIDR, enableDnsSupport: true, enableDnsHostnames: true, tags: tags("vpc") },
        { parent },
    );
    const igw = new aws.ec2.InternetGateway(`${name}-igw`, { vpcId: vpc.id, tags: tags("igw") }, { parent });
    const subnet = new aws.ec2.Subnet(
        `${name}-subnet`,
        { vpcId: vpc.id, cidrBlock: CREATED_SUBNET_CIDR, availabilityZone: zone, tags: tags("subnet") },
        { parent },
    );
    const routes = new aws.ec2.RouteTable(
        `${name}-routes`,
        { vpcId: vpc.id, routes: [{ cidrBlock: "0.0.0.0/0", gatewayId: igw.id }], tags: tags("routes") },
        { parent },
    );
    const association = new aws.ec2.RouteTableAssociation(`${name}-routes-subnet`, { subnetId: subnet.id, routeTableId: routes.id }, { parent });
    return { vpcId: vpc.id, subnetId: subnet.id, network: [igw, association] };
}
