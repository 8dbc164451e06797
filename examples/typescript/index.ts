// One hardened instance per service, each carrying only its own service's role.
// `@pulumi/ec2-assume-role` is the SDK `pulumi package add` generates from schema.json.
import * as ec2assumerole from "@pulumi/ec2-assume-role";

const access = new ec2assumerole.Ec2AssumeRole("prod", {
    services: [{ name: "orders" }, { name: "invoices", versioning: true }],
    topology: "dedicated",
    instanceType: "t4g.small",
    metadataHopLimit: 1,
    forceDestroy: false,
});

// The outputs the check reads (`ec2-assume-role-check --stack prod`).
export const topology = access.topology;
export const region = access.region;
export const partition = access.partition;
export const services = access.services;
export const instances = access.instances;
