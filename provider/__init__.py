"""The component package's entry (see __main__.py): `python provider`, as the Pulumi CLI runs it."""
