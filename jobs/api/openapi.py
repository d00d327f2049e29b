"""The OpenAPI 3.1 description of /v1/, served at /v1/openapi.json.

Hand-written, next to the views it describes, and checked against the live endpoints by
tests/api/test_openapi.py (schemathesis): every status code and body the views return is
here. Change both together.
"""

import copy

UUID = {"type": "string", "format": "uuid"}
USD = {"type": ["number", "null"], "description": "USD, as the provider reports it."}
STATUS = {
    "type": "string",
    "enum": ["queued", "running", "storing", "succeeded", "failed", "canceled"],
    "description": "queued, running and storing are live; the others are final.",
}


def _error_response(description: str, *, headers: dict | None = None) -> dict:
    response = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        response["headers"] = headers
    return response


RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again, where the studio knows.",
        "schema": {"type": "string"},
    }
}
UNAUTHORIZED = _error_response(
    "No token, a malformed Authorization header, or a token that is unknown or revoked, whose "
    "owner was deactivated, or (a team's token) whose owner is no longer in the team "
    "(`type: unauthorized`).",
    headers={"WWW-Authenticate": {"schema": {"type": "string"}}},
)
RATE_LIMITED = _error_response(
    "Too many requests (`type: rate_limit_error`). `code` says which limit: `token_rate_limit` "
    "(GATEWAY_REQUESTS_PER_MINUTE per token), `submit_rate_limit` (JOB_SUBMITS_PER_MINUTE), "
    "`too_many_active_jobs` (JOB_ACTIVE_LIMIT) or `too_many_waits` (the process holds "
    "GATEWAY_MAX_WAITS_PER_PROCESS synchronous waits already: use `?async=true`).",
    headers={
        **RETRY_AFTER,
        "RateLimit-Limit": {"schema": {"type": "string"}},
        "RateLimit-Remaining": {"schema": {"type": "string"}},
        "RateLimit-Reset": {"schema": {"type": "string"}},
    },
)
BAD_REQUEST = _error_response(
    "The request is not valid (`type: invalid_request_error`); `param` names the field. The "
    "studio checks what its web form checks, for the chosen model: its durations and sizes, "
    "whether it takes an image, and a prompt unless an image is given."
)
TEAM = {
    "type": ["object", "null"],
    "required": ["id", "name"],
    "properties": {"id": UUID, "name": {"type": "string"}},
    "description": "Where the job is charged: the team the token belongs to, or null for the "
    "owner's personal space.",
}
WEBHOOK_URL = {
    "type": ["string", "null"],
    "maxLength": 2000,
    "description": "The studio's extension (the provider has none): an http(s) URL to POST the "
    "job to when it succeeds, fails or is canceled (the `jobFinished` webhook). Left out or "
    "null: the token's default webhook URL, if it has one. It must resolve to public addresses "
    "only (unless the studio allows private ones), checked now (400 naming `webhook_url`) and "
    "again at each delivery.",
}
JOB_NOT_FOUND = _error_response(
    "No job with this id belongs to the token's owner (`type: not_found`)."
)
# For tools that follow links (and schemathesis' stateful runs): from a generation to its job.
JOB_LINKS = {
    "GetJob": {"operationId": "getJob", "parameters": {"job_id": "$response.body#/id"}},
    "GetJobVideo": {"operationId": "getJobVideo", "parameters": {"job_id": "$response.body#/id"}},
}
JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "description": "The id from a generation's answer.",
    "schema": UUID,
}

SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {
                        "type": "string",
                        "description": "invalid_request_error, unauthorized, "
                        "insufficient_budget, not_found, rate_limit_error or internal_error.",
                    },
                    "param": {"type": "string", "description": "The field at fault."},
                    "code": {"type": "string", "description": "Which refusal or failure."},
                    "job_id": {**UUID, "description": "The job a late failure is about."},
                },
            }
        },
    },
    "GenerationRequest": {
        "type": "object",
        "required": ["model"],
        "description": "null means the same as leaving a field out.",
        "properties": {
            "model": {"type": "string", "minLength": 1, "examples": ["ir/test-video"]},
            "prompt": {"type": ["string", "null"], "maxLength": 10000},
            "size": {
                "type": ["string", "null"],
                "description": "auto (the default) or WIDTHxHEIGHT, one the model makes.",
                "examples": ["auto", "640x360"],
            },
            "seconds": {
                "type": ["string", "integer", "null"],
                "description": "auto (the default) or one of the model's durations.",
                "examples": ["auto", 5],
            },
            "response_format": {
                "type": ["string", "null"],
                "enum": ["url", "b64_json", "b64_ephemeral", None],
                "default": "url",
                "description": "url: a link to the studio's copy. b64_json, b64_ephemeral: the "
                "video inline (b64_ephemeral: the provider keeps no copy).",
            },
            "image": {
                "type": ["string", "array", "null"],
                "items": {"type": "string"},
                "maxItems": 6,
                "description": "For image-to-video: an http(s) URL on a public address, or a "
                "data URI. Only the first image is used.",
            },
            "image[]": {
                "type": ["string", "array", "null"],
                "items": {"type": "string"},
                "maxItems": 6,
                "description": "The same as image.",
            },
            "webhook_url": WEBHOOK_URL,
        },
        "examples": [{"model": "ir/test-video", "prompt": "a red fox running through snow"}],
    },
    "GenerationForm": {
        "type": "object",
        "required": ["model"],
        "properties": {
            "model": {"type": "string", "minLength": 1},
            "prompt": {"type": "string", "maxLength": 10000},
            "size": {"type": "string"},
            "seconds": {"type": "string"},
            "response_format": {"type": "string", "enum": ["url", "b64_json", "b64_ephemeral"]},
            "image": {
                "type": "string",
                "contentMediaType": "application/octet-stream",
                "description": "An uploaded PNG, JPEG or WebP (or a URL or data URI as text).",
            },
            "image[]": {
                "type": "array",
                "maxItems": 6,
                "items": {"type": "string", "contentMediaType": "application/octet-stream"},
            },
            "webhook_url": {**WEBHOOK_URL, "type": "string"},
        },
    },
    "GenerationResult": {
        "type": "object",
        "required": ["created", "data", "latency", "cost"],
        "properties": {
            "id": {**UUID, "description": "The studio's job: GET /v1/jobs/{id}."},
            "team": TEAM,
            "created": {"type": "integer", "description": "Unix seconds."},
            "data": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "url": {
                            "type": "string",
                            "description": "The studio's own URL for the video: send the same "
                            "Authorization header to fetch it.",
                        },
                        "b64_json": {"type": "string", "description": "The MP4, base64."},
                        "revised_prompt": {"type": ["string", "null"]},
                    },
                },
            },
            "latency": {
                "type": ["integer", "null"],
                "description": "Milliseconds from the request to the stored video.",
            },
            "cost": USD,
        },
    },
    "JobAccepted": {
        "type": "object",
        "required": ["id", "status", "model", "created", "team"],
        "properties": {
            "id": UUID,
            "status": STATUS,
            "model": {"type": "string"},
            "created": {"type": "integer"},
            "team": TEAM,
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "status", "model", "created", "team"],
        "description": "While live: id, status, model, created, team. Succeeded: also the "
        "generation result (data, latency, cost). Failed or canceled: also error and cost. "
        "Expired (retention deleted its video): expired_at (Unix seconds), cost, and an error "
        "with code expired.",
        "properties": {
            "id": UUID,
            "status": STATUS,
            "model": {"type": "string"},
            "created": {"type": "integer"},
            "team": TEAM,
            "data": {"$ref": "#/components/schemas/GenerationResult/properties/data"},
            "latency": {"type": ["integer", "null"]},
            "cost": USD,
            "error": {"$ref": "#/components/schemas/Error/properties/error"},
            "expired_at": {"type": "integer"},
        },
    },
    "Model": {
        "type": "object",
        "required": ["id", "providers", "seconds", "sizes", "output", "supported_params"],
        "properties": {
            "id": {"type": "string"},
            "providers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "model_name", "pricing"],
                    "properties": {
                        "id": {"type": "string"},
                        "model_name": {"type": "string"},
                        "pricing": {
                            "type": "object",
                            "required": ["type"],
                            "properties": {
                                "type": {
                                    "type": "string",
                                    "enum": ["fixed", "calculated", "post_generation"],
                                },
                                "value": {"type": "number"},
                                "range": {
                                    "type": "object",
                                    "properties": {
                                        "min": {"type": "number"},
                                        "average": {"type": "number"},
                                        "max": {"type": "number"},
                                    },
                                },
                            },
                        },
                    },
                },
            },
            "seconds": {"type": "array", "items": {"type": "integer"}},
            "default_seconds": {"type": ["integer", "null"]},
            "sizes": {"type": "array", "items": {"type": "string"}},
            "output": {"type": "array", "items": {"type": "string"}},
            "supported_params": {
                "type": "object",
                "properties": {
                    "edit": {"type": "boolean", "description": "Takes an input image."},
                    "mask": {"type": "boolean"},
                    "quality": {"type": "boolean"},
                },
            },
        },
    },
}

PATHS = {
    "/v1/openai/videos/generations": {
        "post": {
            "operationId": "createVideo",
            "summary": "Generate a video, as ImageRouter's endpoint of the same path",
            "description": "By default the answer waits for the video: 200 and its headers at "
            "once, a space every 3 s while the job is live, then the JSON. A failure after that "
            "is a 200 whose body is an error (`type: internal_error`), as at the provider. "
            "With `?async=true` or `Prefer: respond-async` the answer is 202 at once; fetch the "
            "result from the Location.",
            "parameters": [
                {
                    "name": "async",
                    "in": "query",
                    "required": False,
                    "description": "true: answer 202 at once instead of waiting.",
                    "schema": {"type": "string", "enum": ["true", "false"]},
                },
                {
                    "name": "Prefer",
                    "in": "header",
                    "required": False,
                    "description": "respond-async: as ?async=true (the query wins if both).",
                    "schema": {"type": "string"},
                },
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "Repeat it to retry safely: within 24 hours, the same "
                    "request with the same key gets the first request's job back (with "
                    "`Idempotent-Replayed: true`), never a new one; another request with it is "
                    "a 422.",
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 255,
                        "pattern": "^[!-~]+$",
                    },
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/GenerationRequest"}
                    },
                    "multipart/form-data": {
                        "schema": {"$ref": "#/components/schemas/GenerationForm"}
                    },
                },
            },
            "responses": {
                "200": {
                    "description": "The video (possibly after leading spaces), or an error that "
                    "happened once the answer had started.",
                    "links": JOB_LINKS,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/GenerationResult"},
                                    {"$ref": "#/components/schemas/Error"},
                                ]
                            }
                        }
                    },
                },
                "202": {
                    "description": "Accepted (asynchronous mode): the job is queued.",
                    "links": JOB_LINKS,
                    "headers": {
                        "Location": {
                            "description": "GET it for the status and the result.",
                            "schema": {"type": "string"},
                        },
                        "Preference-Applied": {"schema": {"type": "string"}},
                    },
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/JobAccepted"}}
                    },
                },
                "400": BAD_REQUEST,
                "401": UNAUTHORIZED,
                "402": _error_response(
                    "The video could cost more than is left at one of the budget levels that "
                    "apply where the token charges: the organization, the token's team and the "
                    "owner's budget in it (or the owner's personal budget), and the token's own "
                    "budget (`type: insufficient_budget`, `code: over_budget`). The message "
                    "names the level that is short. Nothing was made."
                ),
                "403": _error_response(
                    "The token's team has used its storage quota (`type: insufficient_storage`, "
                    "`code: storage_quota_full`): the message says how much it uses of how "
                    "much. Nothing was made."
                ),
                "404": _error_response(
                    "The model is not one the token's owner may use where the token charges: "
                    "hidden, kept for staff, or not on its team's list (`code: model_not_found`)."
                ),
                "413": _error_response("The request body is larger than the studio accepts."),
                "415": _error_response("The body is neither JSON nor multipart/form-data."),
                "422": _error_response(
                    "The Idempotency-Key was used for a different request in the last 24 hours "
                    "(`code: idempotency_key_reused`). Nothing was made."
                ),
                "429": RATE_LIMITED,
            },
        }
    },
    "/v1/jobs/{job_id}": {
        "get": {
            "operationId": "getJob",
            "summary": "A job's status, and its result once it has one",
            "parameters": [JOB_ID],
            "responses": {
                "200": {
                    "description": "The job. While it is live, Retry-After says when to ask again.",
                    "headers": RETRY_AFTER,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Job"}}
                    },
                },
                "401": UNAUTHORIZED,
                "404": JOB_NOT_FOUND,
                "429": RATE_LIMITED,
            },
        }
    },
    "/v1/jobs/{job_id}/content": {
        "get": {
            "operationId": "getJobVideo",
            "summary": "The video (the URL a url result points at)",
            "parameters": [
                JOB_ID,
                {
                    "name": "download",
                    "in": "query",
                    "required": False,
                    "description": "Present: answer as a download named <id>.mp4.",
                    "schema": {"type": "string"},
                },
                {
                    "name": "Range",
                    "in": "header",
                    "required": False,
                    "description": "One byte range, e.g. bytes=0-1023.",
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "200": {
                    "description": "The whole MP4.",
                    "content": {"video/mp4": {"schema": {"type": "string"}}},
                },
                "206": {
                    "description": "One byte range of it.",
                    "headers": {"Content-Range": {"schema": {"type": "string"}}},
                    "content": {"video/mp4": {"schema": {"type": "string"}}},
                },
                "302": {
                    "description": "With S3 storage: a short-lived signed URL for the video.",
                    "headers": {"Location": {"schema": {"type": "string"}}},
                },
                "401": UNAUTHORIZED,
                "404": _error_response(
                    "No such job for the token's owner, or it has no video (yet)."
                ),
                "410": _error_response(
                    "The video expired: the studio's retention deleted it (`code: expired`, the "
                    "date in the message). The job, GET /v1/jobs/{job_id}, stays."
                ),
                "416": {
                    "description": "The range starts past the end of the video.",
                    "headers": {"Content-Range": {"schema": {"type": "string"}}},
                },
                "429": RATE_LIMITED,
            },
        }
    },
    "/v1/models": {
        "get": {
            "operationId": "listModels",
            "summary": "The video models the token's owner may choose where the token charges "
            "(a team's token: the team's allowed models), in ImageRouter's shape",
            "parameters": [
                {
                    "name": "type",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "video (the default); any other type lists nothing.",
                },
                {"name": "provider", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "free",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["true", "false"]},
                },
                {"name": "name", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "sort",
                    "in": "query",
                    "schema": {"type": "string", "enum": ["name", "provider", "price", "date"]},
                },
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}},
            ],
            "responses": {
                "200": {
                    "description": "An object keyed by model id.",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": {"$ref": "#/components/schemas/Model"},
                            }
                        }
                    },
                },
                "400": BAD_REQUEST,
                "401": UNAUTHORIZED,
                "429": RATE_LIMITED,
            },
        }
    },
    "/v1/openapi.json": {
        "get": {
            "operationId": "getOpenAPI",
            "summary": "This description",
            "security": [],
            "responses": {
                "200": {
                    "description": "OpenAPI 3.1",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    },
}

# Every path may answer 400 before its endpoint is reached: a NUL character (%00) in the URL or
# a cookie, in plain text (jobs/middleware.py); a request Django cannot read (control
# characters in the query, say), as an error in JSON.
MALFORMED = (
    "A request that cannot be read: a NUL character (%00) in the URL or a cookie (answered in "
    "plain text), or a malformed query string (`code: bad_request`)."
)
for _path in PATHS.values():
    for _operation in _path.values():
        _responses = _operation["responses"]
        if "400" in _responses:
            _refused = copy.deepcopy(_responses["400"])
            _refused["description"] += " Or: " + MALFORMED[0].lower() + MALFORMED[1:]
        else:
            _refused = _error_response(MALFORMED)
        _refused.setdefault("content", {})["text/plain"] = {"schema": {"type": "string"}}
        _responses["400"] = _refused


DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "VideoStudio API",
        "version": "1",
        "description": "ImageRouter's video generation API, served by the studio with API "
        "tokens: each call is a studio job, checked like the web form and listed in the "
        "studio. A token charges one place, chosen when it is made: its owner's personal space "
        "(the job counts against their personal budget and shows in their My videos) or one "
        "of their teams (the team's budget and the owner's budget in it; the job is shared with "
        "the team, and only the team's allowed models are offered). A token may carry a budget "
        "of its own, checked too. Every job says where it is charged in `team` (null: "
        "personal). A token of a team its owner has left, or whose owner was deactivated, gets "
        "401 at once. Errors have ImageRouter's shape, "
        '`{"error": {"message", "type"}}`. A method a path does not take gets 405 with Allow.',
    },
    "security": [{"bearerAuth": []}],
    "paths": PATHS,
    "webhooks": {
        "jobFinished": {
            "post": {
                "operationId": "jobFinished",
                "summary": "A job that named a webhook_url (or whose token has a default one) "
                "has succeeded, failed or been canceled",
                "description": "The body is exactly what GET /v1/jobs/{id} answers at that "
                "moment, except that the video is always its `url` (never inline b64_json). "
                "Signed per Standard Webhooks with the token's signing secret (`whsec_...`, "
                "from the API tokens page): verify with "
                "`standardwebhooks.Webhook(secret).verify(body, headers)`. Sent once per job; a "
                "2xx answer ends it. 5xx, 408, 425, 429, a timeout (10 s) or no connection is "
                "retried after 5 s, 30 s, 2 min, 10 min, 1 h, 3 h, 6 h and 12 h; any other "
                "answer, or a host that now resolves to a private address, ends it as failed. "
                "Redirects are not followed. A retry keeps its `webhook-id`.",
                "security": [],
                "parameters": [
                    {
                        "name": name,
                        "in": "header",
                        "required": True,
                        "description": description,
                        "schema": {"type": "string"},
                    }
                    for name, description in (
                        ("webhook-id", "msg_ and 32 hex digits: the same on every retry."),
                        ("webhook-timestamp", "Unix seconds of this attempt."),
                        (
                            "webhook-signature",
                            "v1, and the base64 HMAC-SHA256 of "
                            "id.timestamp.body under the secret's bytes.",
                        ),
                    )
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Job"}}
                    },
                },
                "responses": {"2XX": {"description": "Received: nothing more is sent."}},
            }
        }
    },
    "components": {
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API token (vst_...) from the studio's API tokens page, for "
                "the owner's personal space or one of their teams.",
            }
        },
        "schemas": SCHEMAS,
    },
}


def document(*, server_url: str) -> dict:
    """The description, naming the studio that serves it as its server."""
    served = copy.deepcopy(DOCUMENT)
    served["servers"] = [{"url": server_url}]
    return served
