"""What the server advertises about its security: ``.well-known/smart-configuration`` (SMART App Launch 2.x,
Backend Services) and the CapabilityStatement's ``rest.security``, from the same values so they cannot disagree."""

from __future__ import annotations

from typing import Any

from fhir_server.security.tokens import ASSERTION_ALGORITHMS

TOKEN_PATH = "/auth/token"
SIGN_IN_PATH = "/auth/sign-in"
SMART_CONFIGURATION_PATH = "/.well-known/smart-configuration"
JWKS_PATH = "/.well-known/jwks.json"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SCOPES_SUPPORTED = ("system/*.cruds", "system/*.rs", "system/ServiceRequest.cr", "system/Task.rus",
                    "system/ClaimResponse.rs", "system/Subscription.crud", "system/AuditEvent.rs")


def smart_configuration(base_url: str) -> dict[str, Any]:
    return {
        "issuer": base_url,
        "jwks_uri": base_url + JWKS_PATH,
        "token_endpoint": base_url + TOKEN_PATH,
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": list(SCOPES_SUPPORTED),
        "capabilities": ["client-confidential-asymmetric", "permission-v2"],
    }


def capability_security(base_url: str) -> dict[str, Any]:
    """``CapabilityStatement.rest.security``: SMART-on-FHIR, with the token endpoint in the oauth-uris extension."""
    return {
        "cors": False,
        "service": [{
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}],
            "text": "OAuth2 using SMART Backend Services (client_credentials, private_key_jwt RS384/ES384, SMART v2 scopes)",
        }],
        "extension": [{"url": OAUTH_URIS, "extension": [{"url": "token", "valueUri": base_url + TOKEN_PATH}]}],
        "description": f"Backend clients get an access token at {base_url + TOKEN_PATH}; discovery at "
                       f"{base_url + SMART_CONFIGURATION_PATH}.",
    }
