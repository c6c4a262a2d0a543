import * as pulumi from "@pulumi/pulumi";

/**
 * The `__provider` text of a Node.js dynamic resource, written from a factory's own source rather
 * than by `pulumi.runtime.serializeFunction`.
 *
 * The SDK's dynamic provider host (`pulumi-resource-pulumi-nodejs`) loads that text as a CommonJS
 * module and calls its `handler()` for the provider; every dynamic resource's state holds such a
 * text, and the host reads it for refresh and destroy, so the format cannot change under a stack.
 * Serializing a closure costs ~0.3 s of every program run (the first call starts a V8 inspector
 * session and parses each captured function) and wraps each function in a scope object; a
 * factory's source is taken once.
 *
 * So the factory must be self-contained: it names nothing outside itself (Node's built-in
 * modules, and packages the program depends on, come from `require` inside it). Its text is
 * stored with every resource, twice (inputs and outputs): its lines lose their indentation and
 * its full-line `//` comments, so no string in it may span lines, and no comment may follow code.
 */
export function providerModule(factory: () => object, member?: string): string {
    const text = factory
        .toString()
        .replace(/\n[ \t]*\/\/[^\n]*/g, "")
        .replace(/\n[ \t]+/g, "\n");
    return `exports.handler = () => (${text})()${member === undefined ? "" : `.${member}`};\n`;
}

/**
 * A dynamic resource whose provider is such a text: what `pulumi.dynamic.Resource(provider, name,
 * props, opts, "fou", type)` registers (type `pulumi-nodejs:dynamic/fou:<type>`, the text as
 * `__provider`), without serializing a provider object.
 */
export class TextDynamicResource extends pulumi.CustomResource {
    constructor(providerText: string, type: string, name: string, props: pulumi.Inputs, opts?: pulumi.CustomResourceOptions) {
        super(`pulumi-nodejs:dynamic/fou:${type}`, name, { ...props, __provider: providerText }, opts);
    }
}
