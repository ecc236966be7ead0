"""Service layer between the HTTP API and the stores: validation, conditional logic, versions, bundles."""
