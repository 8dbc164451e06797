"""Components, config and policy documents of the ec2-assume-role Pulumi program."""
