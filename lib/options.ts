import type * as pulumi from "@pulumi/pulumi";

/**
 * A resource's `dependsOn` with `more` after it: what the caller passed (one resource, a list, an
 * output of a list, or nothing) is kept, and a host's `readyAfter` is added so that no step on a
 * host starts before the host can take it. An output of a list becomes one element of the list:
 * the SDK's gatherExplicitDependencies flattens outputs and lists wherever they stand, so the
 * cast only widens the type.
 */
export function dependsOnToo(
    dependsOn: pulumi.CustomResourceOptions["dependsOn"],
    more: readonly pulumi.Resource[] = [],
): pulumi.Input<pulumi.Resource>[] {
    const given = dependsOn === undefined ? [] : Array.isArray(dependsOn) ? dependsOn : [dependsOn as pulumi.Input<pulumi.Resource>];
    return [...given, ...more];
}
