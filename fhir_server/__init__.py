"""FHIR R4 server for health-plan second-opinion requests."""

__version__ = "0.1.0"
FHIR_VERSION = "4.0.1"
