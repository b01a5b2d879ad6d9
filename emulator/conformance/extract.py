#!/usr/bin/env python3
"""Regenerates endpoints.json, the conformance fixture, from the Edgegap API reference.

    python3 emulator/conformance/extract.py VERSIONING.txt DEDICATED_SERVERS.txt > emulator/conformance/endpoints.json

The two inputs are the seed documents (the project keeps them in ../shared/seeds/):
- Versioning: one OpenAPI 3 document per endpoint (```json blocks); each endpoint's request
  and response schemas are taken with their $refs resolved.
- Dedicated Servers: fields and example requests/answers as text; each example answer
  becomes a schema: the example's fields, required, typed as the example types them (a
  string stays a string even when it holds a number), timestamps given the format of the
  example's digits. Body fields with their limits ("string · max: 20") come from the field
  list.

Facts the seed documents do not state are taken from Edgegap's published OpenAPI
(edgegap/openapi-specification: edgegap-v1-openapi.yaml, edgegap-v2-openapi.yaml) and the
typed client generated from api.edgegap.com/swagger.json (RJ/bevygap, edgegap_async/):
they are the SUPPLEMENTS below, each with its source. Facts only: paths, methods, status
codes, field names, types, limits.
"""

import json
import re
import sys

METHODS = ("get", "post", "put", "patch", "delete")
PLATFORM_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.(\d+)$")
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
CLOCK = re.compile(r"^\d\d:\d\d:\d\d$")
ERROR = {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}

V1_SPEC = "edgegap/openapi-specification edgegap-v1-openapi.yaml @0d1e1555d2c3499ce90e13e1818bf26ee90b7085"
V2_SPEC = "edgegap/openapi-specification edgegap-v2-openapi.yaml @03169531834d02844c7a31b9db4b399088b70097"
CLIENT = "RJ/bevygap edgegap_async/ (generated from api.edgegap.com/swagger.json) @1403fde69e23b9feeb31d14b9e3f640891a055c4"


def resolve(schema, components):
    """The schema with $ref and allOf resolved, reduced to the keys the test checks."""
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return resolve(components[name], components)
    if "allOf" in schema:
        merged = {}
        for part in schema["allOf"]:
            merged.update(resolve(part, components))
        for key, value in schema.items():
            if key != "allOf":
                merged[key] = value
        return resolve(merged, components)
    out = {}
    for key in ("type", "enum", "minimum", "maximum", "minLength", "maxLength", "nullable", "required", "format", "minItems"):
        if key in schema:
            out[key] = schema[key]
    if "properties" in schema:
        out["properties"] = {k: resolve(v, components) for k, v in schema["properties"].items()}
        out.setdefault("type", "object")
    if "items" in schema:
        out["items"] = resolve(schema["items"], components)
    if out.get("format") == "date-time":
        # The v1 OpenAPI's examples of these date-times read '2026-04-22 20:30:52.283949'.
        out["x-format"] = "platform-time"
    out.pop("format", None)
    return out


def versioning(text):
    endpoints = []
    for block in re.findall(r"```json\n(.*?)\n```", text, re.S):
        doc = json.loads(block)
        components = doc.get("components", {}).get("schemas", {})
        for path, item in doc["paths"].items():
            for method, op in item.items():
                if method not in METHODS:
                    continue
                request = None
                body = op.get("requestBody", {}).get("content", {}).get("application/json")
                if body:
                    request = resolve(body["schema"], components)
                responses = {}
                for code, answer in op["responses"].items():
                    content = answer.get("content", {}).get("application/json")
                    responses[code] = resolve(content["schema"], components) if content else None
                endpoints.append({
                    "id": op["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "source": "seed: Versioning",
                    "request": request,
                    "responses": responses,
                })
    return endpoints


def infer(value, path, maps):
    """A schema from an example value; `maps` lists the paths whose objects are name -> value."""
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        schema = {"type": "string"}
        match = PLATFORM_TIME.match(value)
        if match:
            schema["x-format"] = "platform-time" if len(match.group(1)) == 6 else "platform-millis"
        elif ISO_TIME.match(value):
            schema["x-format"] = "iso-time"
        elif CLOCK.match(value):
            schema["x-format"] = "time-of-day"
        return schema
    if isinstance(value, list):
        schema = {"type": "array"}
        if value:
            schema["items"] = infer(value[0], path + "[]", maps)
        return schema
    if isinstance(value, dict):
        if path in maps:
            first = next(iter(value.values()))
            return {"type": "object", "additionalProperties": infer(first, path + "{}", maps)}
        return {
            "type": "object",
            "properties": {k: infer(v, f"{path}.{k}", maps) for k, v in value.items()},
            "required": list(value.keys()),
        }
    return {}


FIELD = re.compile(r"^([a-z_]+)(string\[\]|string|boolean \| nullable|boolean|integer|all of)(?: · (max|min): (\d+))?(Required|Optional)$")
PORT_MAPS = {"$.ports", "$.deployment_summary.ports", "$.data[].ports"}


def dedicated(text):
    lines = text.splitlines()
    endpoints = []
    for i, line in enumerate(lines):
        match = re.match(r"^(GET|POST|PUT|PATCH|DELETE) (\S+) HTTP/1\.1$", line)
        if not match:
            continue
        method, path = match.groups()
        # The field list of this endpoint: back to the previous request line.
        start = i
        while start > 0 and not re.match(r"^(GET|POST|PUT|PATCH|DELETE) \S+ HTTP/1\.1$", lines[start - 1]):
            start -= 1
        section = lines[start:i]
        body_fields, required = {}, []
        code = None
        for j, field_line in enumerate(section):
            found = FIELD.match(field_line.strip())
            if found and "Body" in section[:j]:
                name, kind, bound, number, need = found.groups()
                schema = {
                    "string[]": {"type": "array", "items": {"type": "string"}},
                    "string": {"type": "string"},
                    "boolean": {"type": "boolean"},
                    "boolean | nullable": {"type": "boolean", "nullable": True},
                    "integer": {"type": "integer"},
                    "all of": {"type": "object"},
                }[kind]
                schema = dict(schema)
                if bound and kind == "string":
                    schema["maxLength" if bound == "max" else "minLength"] = int(number)
                elif bound:
                    schema["maxItems" if bound == "max" else "minItems"] = int(number)
                body_fields[name] = schema
                if need == "Required":
                    required.append(name)
            if field_line.strip() in ("Responses",) and j + 1 < len(section):
                following = section[j + 1].strip()
                if re.match(r"^\d{3}", following):
                    code = following[:3]
        # Headers (a blank line after them only when a request body follows), then the
        # example request body (if any) and answer.
        k = i + 1
        while k < len(lines) and re.match(r"^[A-Za-z-]+:", lines[k]):
            k += 1
        rest = "\n".join(lines[k:])
        decoder = json.JSONDecoder()
        examples = []
        position = 0
        while len(examples) < 2:
            while position < len(rest) and rest[position] in " \n\t":
                position += 1
            if position >= len(rest) or rest[position] not in "{[":
                break
            value, end = decoder.raw_decode(rest, position)
            examples.append(value)
            position = end
        no_content = rest[position:].lstrip().startswith("No content")
        request_example = examples[0] if method in ("POST", "PATCH") and len(examples) == 2 else None
        answer = examples[-1] if examples else None
        if method in ("POST", "PATCH") and len(examples) == 1:
            request_example, answer = examples[0], None
        request = None
        if body_fields or request_example is not None:
            request = {"type": "object", "properties": body_fields, "required": required}
            if request_example is not None:
                for key, value in request_example.items():
                    request["properties"].setdefault(key, infer(value, "$." + key, set()))
        responses = {}
        if no_content:
            responses["204"] = None
        elif answer is not None:
            responses[code or "200"] = infer(answer, "$", PORT_MAPS)
        endpoints.append({
            "id": f"{method} {path}",
            "method": method,
            "path": re.sub(r"\{fleet-name\}", "{fleet_name}", path),
            "source": "seed: Dedicated Servers",
            "request": request,
            "responses": responses,
        })
    return endpoints


def find(endpoints, method, path):
    for endpoint in endpoints:
        if endpoint["method"] == method and endpoint["path"] == path:
            return endpoint
    raise SystemExit(f"{method} {path} is not in the documents")


def supplement(endpoints):
    """What the seed documents leave unsaid, from the full OpenAPI (see the module's doc)."""
    notes = []

    def codes(method, path, answers, source):
        endpoint = find(endpoints, method, path)
        for code, schema in answers.items():
            endpoint["responses"].setdefault(code, schema)
        notes.append(f"{method} {path}: codes {sorted(answers)} from {source}")

    errors = lambda *cs: {c: ERROR for c in cs}
    v2_deploy = {"request_id": {"type": "string"}}
    # The v2 deploy answers: 202 {request_id}; 400, 401, 422, 500.
    for path in ("/v2/deployments", "/v2/private-fleets:deploy"):
        endpoint = find(endpoints, "POST", path)
        answer = endpoint["responses"].pop("200", None) or {"type": "object", "properties": v2_deploy, "required": ["request_id"]}
        endpoint["responses"]["202"] = answer
        codes("POST", path, errors("400", "401", "422", "500"), V2_SPEC)
    codes("GET", "/v2/private-fleets/{fleet_name}/hosts", errors("400", "401", "500"), V2_SPEC)
    hosts = find(endpoints, "GET", "/v2/private-fleets/{fleet_name}/hosts")["responses"]["200"]
    host = hosts["properties"]["data"]["items"]
    host["properties"]["beacon"]["nullable"] = True
    host["required"] = ["host_id", "status", "allocated_cpu_units", "allocated_memory_mb", "created_at", "updated_at", "pin", "delete_schedules"]
    host["properties"]["status"]["enum"] = ["PENDING", "ACTIVE"]
    host["properties"]["pin"]["properties"]["clock_speed_ghz"] = {"type": "number"}
    notes.append(f"private fleet hosts: required fields, nullable beacon, status enum from {V2_SPEC}")

    status_paths = [("GET", "/v1/status/{request_id}", "$"), ("DELETE", "/v1/stop/{request_id}", "deployment_summary"),
                    ("DELETE", "/v1/self/stop/{request_id}/{access_point_id}", "deployment_summary")]
    for method, path, where in status_paths:
        schema = find(endpoints, method, path)["responses"]["200"]
        if where != "$":
            schema = schema["properties"][where]
        # removal_time and last_status have no value before removal or a change of status.
        schema["required"] = [f for f in schema["required"] if f not in ("removal_time", "last_status")]
    notes.append(f"status: removal_time and last_status optional, from {V1_SPEC} (V1DeploymentStatus)")
    codes("GET", "/v1/status/{request_id}", errors("400", "401", "404", "500"), V1_SPEC)
    stop_202 = {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}
    codes("DELETE", "/v1/stop/{request_id}", dict(errors("400", "401", "403", "404", "410", "500"), **{"202": stop_202}), V1_SPEC)
    codes("DELETE", "/v1/self/stop/{request_id}/{access_point_id}", dict(errors("400", "401", "403", "404", "500"), **{"202": stop_202}), V1_SPEC)
    bulk = find(endpoints, "POST", "/v1/deployments/bulk-stop")
    bulk["responses"]["202"] = bulk["responses"].pop("200")
    bulk["request"] = {"type": "object", "required": ["filters"], "properties": {"filters": {"type": "array", "items": {
        "type": "object", "required": ["field", "filter_type", "values"], "properties": {
            "field": {"type": "string", "enum": ["request_id", "deployment_tags"]},
            "values": {"type": "array", "items": {"type": "string"}},
            "filter_type": {"type": "string", "enum": ["any", "all", "not"]}}}}}}
    codes("POST", "/v1/deployments/bulk-stop", errors("400", "401", "500"), V1_SPEC)
    codes("GET", "/v1/deployments", errors("400", "401", "500"), V1_SPEC)
    pagination = find(endpoints, "GET", "/v1/deployments")["responses"]["200"]["properties"]["pagination"]
    for field in ("next_page_number", "previous_page_number"):
        pagination["properties"][field]["nullable"] = True
    notes.append(f"deployment list: next_page_number and previous_page_number nullable, from {V1_SPEC}")
    codes("GET", "/v1/locations", errors("400", "401", "500"), V1_SPEC)
    item = find(endpoints, "GET", "/v1/locations")["responses"]["200"]["properties"]["locations"]["items"]
    item["required"].remove("tags")
    notes.append("locations: tags only with ?tags=true (the document's own query parameter)")
    logs = find(endpoints, "GET", "/v1/deployment/{request_id}/container-logs")["responses"]["200"]
    for field in ("crash_logs", "crash_data", "logs_link"):
        logs["properties"][field]["nullable"] = True
    notes.append(f"container logs: crash_logs, crash_data, logs_link nullable, from {V1_SPEC}")
    codes("GET", "/v1/deployment/{request_id}/container-logs", errors("400", "401", "404", "500"), V1_SPEC)
    codes("GET", "/v1/metrics/deployment/{request_id}", errors("400", "401", "404", "422", "500"), V1_SPEC)
    for method, path, extra in [("GET", "/v1/deployments/{request_id}/tags", ()), ("GET", "/v1/deployments/{request_id}/tags/{tag_name}", ()),
                                ("POST", "/v1/deployments/{request_id}/tags", ("409",)), ("PATCH", "/v1/deployments/{request_id}/tags/{tag_name}", ("409",)),
                                ("DELETE", "/v1/deployments/{request_id}/tags/{tag_name}", ())]:
        codes(method, path, errors("400", "401", "404", "500", *extra), V1_SPEC)

    version = {"type": "object", "properties": {
        "kind": {"type": "string", "enum": ["Default", "Seat", "Match"]}, "sockets": {"type": "integer"},
        "autodeploy": {"type": "boolean"}, "empty_ttl": {"type": "integer"}, "session_max_duration": {"type": "integer"}},
        "required": ["kind", "sockets"]}
    for endpoint in endpoints:
        for schema in [endpoint["request"]] + list(endpoint["responses"].values()):
            for holder in (schema, (schema or {}).get("properties", {}).get("version")):
                props = (holder or {}).get("properties", {})
                if "docker_image" in props and "session_config" not in props:
                    # An update may give part of it (AppVersionUpdateSessionConfig: all optional).
                    partial = dict(version, required=[])
                    props["session_config"] = partial if schema is endpoint["request"] and endpoint["method"] == "PATCH" else version
        for schema in endpoint["responses"].values():
            for holder in (schema, (schema or {}).get("properties", {}).get("versions", {}).get("items")):
                props = (holder or {}).get("properties", {})
                if "docker_image" in props and "session_config" not in props:
                    props["session_config"] = version
    notes.append(f"versions: session_config {{kind, sockets, ...}} from {CLIENT} (AppVersionCreateSessionConfig)")

    port = {"type": "object", "required": ["name", "link", "internal", "external", "protocol", "tls_upgrade"], "properties": {
        "name": {"type": "string"}, "link": {"type": "string"}, "internal": {"type": "integer", "minimum": 0},
        "external": {"type": "integer", "minimum": 0}, "protocol": {"type": "string"},
        "tls_upgrade": {"type": "boolean"}, "proxy": {"type": "integer"}}}
    location = {"type": "object", "properties": {k: {"type": "string"} for k in ("city", "country", "continent", "administrative_division", "timezone")}}
    location["properties"].update({"latitude": {"type": "number"}, "longitude": {"type": "number"}})
    endpoints.append({
        "id": "deployment-create (v1)", "method": "POST", "path": "/v1/deploy", "source": V1_SPEC,
        "request": {"type": "object", "required": ["app_name"], "properties": {
            "app_name": {"type": "string"}, "version_name": {"type": "string"},
            "ip_list": {"type": "array", "items": {"type": "string"}},
            "tags": {"type": "array", "items": {"type": "string"}}, "webhook_url": {"type": "string"}}},
        "responses": dict(errors("400", "401", "404", "409", "422", "500"), **{"200": {"type": "object", "properties": {
            "request_id": {"type": "string"}, "request_dns": {"type": "string"}, "request_app": {"type": "string"},
            "request_version": {"type": "string"}, "request_user_count": {"type": "integer", "minimum": 1},
            "filters": {"type": "array", "items": {"type": "object"}}, "tags": {"type": "array", "items": {"type": "string"}},
            "container_log_storage": {"type": "object", "required": ["enabled"], "properties": {
                "enabled": {"type": "boolean"}, "endpoint_storage": {"type": "string", "nullable": True}}}},
            "required": ["request_app", "request_dns", "request_id", "request_user_count", "request_version", "filters", "container_log_storage"]}}),
    })
    notes.append(f"POST /v1/deploy from {V1_SPEC}; container_log_storage required and typed from {CLIENT} (Request, ContainerLogStorageModel)")
    endpoints.append({
        "id": "context-get", "method": "GET", "path": "/v1/context/{request_id}/{security_number}", "source": CLIENT,
        "request": None,
        "responses": dict(errors("401", "404"), **{"200": {"type": "object", "properties": {
            "request_id": {"type": "string"}, "public_ip": {"type": "string"}, "status": {"type": "string"},
            "ready": {"type": "boolean"}, "whitelisting_active": {"type": "boolean"}, "fqdn": {"type": "string"},
            "ports": {"type": "object", "additionalProperties": port}, "location": location,
            "tags": {"type": "array", "items": {"type": "string"}}, "sockets": {"type": "integer"},
            "sockets_usage": {"type": "integer"}, "is_joinable_by_session": {"type": "boolean"}},
            "required": ["request_id", "public_ip", "status", "ready", "whitelisting_active", "fqdn"]}}),
    })
    notes.append(f"GET /v1/context/{{request_id}}/{{security_number}} (the Deployment model) from {CLIENT}")
    return notes


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        first = versioning(f.read())
    with open(sys.argv[2], encoding="utf-8") as f:
        second = dedicated(f.read())
    endpoints = first + second
    notes = supplement(endpoints)
    json.dump({
        "about": "Generated by emulator/conformance/extract.py from the seed documents; do not edit by hand.",
        "sources": {"seed": ["Versioning (docs.edgegap.com/docs/api/versioning)", "Dedicated Servers (docs.edgegap.com/docs/api/dedicated-servers)"],
                    "supplements": notes},
        "endpoints": endpoints,
    }, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
