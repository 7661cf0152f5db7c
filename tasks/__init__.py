"""Pipeline stages, one module each; pure logic, with thin Prefect wrappers in `flows/`."""
