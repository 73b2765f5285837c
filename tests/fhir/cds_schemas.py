"""JSON Schemas of the CDS Hooks 2.0 messages, written from the specification
(https://cds-hooks.hl7.org/2.0/): discovery, hook request, service response (cards),
feedback. Required members and enumerations as the specification states them."""
from __future__ import annotations

from typing import Any

import jsonschema_rs

CODING = {"type": "object", "required": ["code", "system"],
          "properties": {"code": {"type": "string"}, "system": {"type": "string"}, "display": {"type": "string"}}}

DISCOVERY: dict[str, Any] = {
    "type": "object", "required": ["services"],
    "properties": {"services": {"type": "array", "items": {
        "type": "object", "required": ["hook", "description", "id"],
        "properties": {
            "hook": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
            "id": {"type": "string", "pattern": "^[^/?#\\s]+$"},  # the service's URL segment
            "prefetch": {"type": "object", "additionalProperties": {"type": "string"}},
            "usageRequirements": {"type": "string"}}}}},
}

HOOK_REQUEST: dict[str, Any] = {
    "type": "object", "required": ["hook", "hookInstance", "context"],
    "properties": {
        "hook": {"type": "string"}, "hookInstance": {"type": "string"},
        "fhirServer": {"type": "string", "format": "uri"},
        "fhirAuthorization": {"type": "object", "required": ["access_token", "token_type", "expires_in", "scope", "subject"],
                              "properties": {"access_token": {"type": "string"}, "token_type": {"const": "Bearer"},
                                             "expires_in": {"type": "integer"}, "scope": {"type": "string"},
                                             "subject": {"type": "string"}, "patient": {"type": "string"}}},
        "context": {"type": "object"}, "prefetch": {"type": "object"}},
}

LINK = {"type": "object", "required": ["label", "url", "type"],
        "properties": {"label": {"type": "string"}, "url": {"type": "string", "format": "uri"},
                       "type": {"enum": ["absolute", "smart"]}, "appContext": {"type": "string"}}}

CARD: dict[str, Any] = {
    "type": "object", "required": ["summary", "indicator", "source"],
    "properties": {
        "uuid": {"type": "string"},
        "summary": {"type": "string", "maxLength": 139},  # "<140-character summary message"
        "detail": {"type": "string"},
        "indicator": {"enum": ["info", "warning", "critical"]},
        "source": {"type": "object", "required": ["label"],
                   "properties": {"label": {"type": "string"}, "url": {"type": "string", "format": "uri"},
                                  "icon": {"type": "string", "format": "uri"}, "topic": CODING}},
        "suggestions": {"type": "array"},
        "selectionBehavior": {"enum": ["at-most-one", "any"]},
        "overrideReasons": {"type": "array", "items": CODING},
        "links": {"type": "array", "items": LINK}},
}

RESPONSE: dict[str, Any] = {
    "type": "object", "required": ["cards"],
    "properties": {"cards": {"type": "array", "items": CARD}, "systemActions": {"type": "array"}},
}

FEEDBACK: dict[str, Any] = {
    "type": "object", "required": ["feedback"],
    "properties": {"feedback": {"type": "array", "items": {
        "type": "object", "required": ["card", "outcome", "outcomeTimestamp"],
        "properties": {"card": {"type": "string"}, "outcome": {"enum": ["accepted", "overridden"]},
                       "acceptedSuggestions": {"type": "array", "items": {"type": "object", "required": ["id"]}},
                       "overrideReason": {"type": "object", "properties": {"reason": CODING,
                                                                            "userComment": {"type": "string"}}},
                       "outcomeTimestamp": {"type": "string"}}}}},
}


def conforms(schema: dict[str, Any], instance: Any) -> None:
    """Raise with every violation when ``instance`` does not have the specification's shape."""
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}"
              for e in jsonschema_rs.validator_for(schema, validate_formats=True).iter_errors(instance)]
    assert not errors, errors
