#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/) from the repository's real
inputs: the tests' filters, URLs, batch bodies, operations and requests, the scenario files,
the solution fixtures. Run from the repository root: `python3 fuzz/make_corpus.py`. The seeds
are committed; libFuzzer adds what it finds to a copy (bench/fuzz.sh)."""

import glob
import hashlib
import io
import json
import os
import re
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
LIMITS = {"filter": 4096, "odata": 4096, "batch": 16384, "operations": 8192, "cursor": 1024,
          "scenario": 16384, "solution": 65536, "router": 8192,
          "checkpoint": 4096}


def put(target, data, name=None):
    if isinstance(data, str):
        data = data.encode()
    if len(data) > LIMITS[target]:
        return
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    name = name or hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)


def sources(pattern):
    for path in sorted(glob.glob(os.path.join(ROOT, pattern), recursive=True)):
        with open(path, encoding="utf-8", errors="replace") as f:
            yield path, f.read()


def rust_strings(text):
    """Plain Rust string literals (no raw strings), unescaped simply."""
    for m in re.finditer(r'"((?:[^"\\\n]|\\.)*)"', text):
        s = m.group(1)
        s = s.replace('\\"', '"').replace("\\r", "\r").replace("\\n", "\n").replace("\\t", "\t")
        s = re.sub(r"\\\n\s*", "", s).replace("\\\\", "\\")
        yield s


def json_macros(text):
    """The `json!(…)` arguments that are JSON as written."""
    for m in re.finditer(r"json!\(", text):
        i, depth = m.end(), 0
        for j in range(i, min(len(text), i + 20000)):
            c = text[j]
            if c in "([{":
                depth += 1
            elif c in ")]}":
                if depth == 0:
                    try:
                        yield json.loads(text[i:j])
                    except ValueError:
                        pass
                    break
                depth -= 1


def main():
    rs = list(sources("crates/**/*.rs"))
    # Filters: the native language's tests and every `$filter=` a test sends.
    from urllib.parse import unquote
    for _, text in rs:
        for m in re.finditer(r'parse_filter\(\s*"((?:[^"\\]|\\.)*)"', text):
            put("filter", m.group(1).replace("\\'", "'").replace('\\"', '"'))
        for m in re.finditer(r"\$filter=([^\"&\s]*)", text):
            f = unquote(m.group(1))
            put("filter", f)
            put("odata", "accounts?$filter=" + m.group(1))
    for f in ["city eq 'O''s' and (revenue gt 10 or not startswith(name,'A')) or x in (1, 2.5, null)",
              "not (a eq 1 and b eq 2) or c le -1e-3", "name desc, city", "x in ('a','b') and y ne null"]:
        put("filter", f)
    # OData URLs: every Web API path a test asks for, and the URL parser's own tests.
    for path, text in rs:
        if "webapi" in path or "odata" in path:
            for m in re.finditer(r'api\("([^"]*)"\)', text):
                put("odata", m.group(1))
            for s in rust_strings(text):
                if re.match(r"^(https?://|/api/data/|[A-Za-z]+(\(|\?|/|$)|\$)", s) and len(s) > 3 and "{" not in s:
                    put("odata", s)
    # FetchXML: every query the tests send (in the odata target, which reads its input as one).
    for path, text in rs:
        for s in rust_strings(text):
            if s.lstrip().startswith("<fetch"):
                put("odata", s)
    # $apply: every aggregation the tests parse, alone and as a query.
    for path, text in rs:
        for s in rust_strings(text):
            if s.startswith(("aggregate(", "groupby((", "filter(")) and "{" not in s:
                put("odata", s)
                put("odata", "accounts?$apply=" + s)
    # $batch bodies: the tests' raw bodies (Content-Type on the first line).
    boundary = "dwa_batch_5b8d1f0e-0c41-4b7c-9f6e-2d7a41c3e9b0"
    for path, text in rs:
        for s in rust_strings(text):
            if "--" in s and "HTTP/1.1" in s and "\r\n" in s:
                m = re.search(r"--([A-Za-z0-9_\-.]+)\r\n", s)
                if m:
                    put("batch", f"multipart/mixed;boundary={m.group(1)}\n" + s)
    one = (f"\r\n--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
           f"GET http://localhost/api/data/v9.2/accounts?$select=name&$top=1 HTTP/1.1\r\nAccept: application/json\r\n\r\n"
           f"--{boundary}\r\nContent-Type: multipart/mixed;boundary=changeset_1\r\n\r\n--changeset_1\r\n"
           f"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\n"
           f"POST /api/data/v9.2/contacts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
           '{"firstname":"John"}\r\n\r\n--changeset_1\r\nContent-Type: application/http\r\n'
           "Content-Transfer-Encoding: binary\r\nContent-ID: 2\r\n\r\nPATCH $1 HTTP/1.1\r\n"
           'Content-Type: application/json\r\n\r\n{"lastname":"Doe"}\r\n\r\n--changeset_1--\r\n\r\n'
           f"--{boundary}--\r\n")
    put("batch", f"multipart/mixed;boundary={boundary}\n" + one, "dynamics-web-api")
    # Operations: every JSON `{"op": …}` (or list of them) the tests write.
    for _, text in rs:
        for value in json_macros(text):
            if isinstance(value, dict) and "op" in value:
                put("operations", json.dumps(value))
            elif isinstance(value, list) and value and all(isinstance(v, dict) and "op" in v for v in value):
                put("operations", json.dumps(value))
                for v in value:
                    put("operations", json.dumps(v))
    # Cursors: bodies as the server writes them and texts as clients send them.
    for body in ['{"v":["Oslo"],"id":42}', '{"v":[],"id":0}', '{"v":[null,true,1,2.5,"x"],"id":4294967295}',
                 '{"v":[{"a":1}],"id":-1}', '{"id":1}']:
        put("cursor", body)
        put("cursor", "00112233445566778899aabbccddeeff." + body.encode().hex())
    # Scenario files: the corpus, the files that must fail, the shared examples, the packs.
    for pattern in ["tests/scenarios/**/*.yaml", "tests/bad-scenarios/*.yaml", "packs/**/*.yaml"]:
        for path, text in sources(pattern):
            put("scenario", text, os.path.basename(path))
    for path in sorted(glob.glob("/work/shared/scenarios/examples/*.yaml")):
        with open(path, encoding="utf-8") as f:
            put("scenario", f.read(), os.path.basename(path))
    # Solutions: the role XML fixtures, customizations.xml, and zips of them (first byte: flags).
    xmls = []
    for path in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/solution/**/*.xml"), recursive=True)):
        with open(path, "rb") as f:
            data = f.read()
        xmls.append((os.path.basename(path), data))
        put("solution", b"\x00" + data, os.path.basename(path))
        put("solution", b"\x01" + data, "create-" + os.path.basename(path))
    for name, data in xmls:
        if name == "customizations.xml":
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
                z.writestr("solution.xml", '<?xml version="1.0"?><ImportExportXml/>')
                z.writestr("customizations.xml", data)
            put("solution", b"\x01" + buf.getvalue(), "solution.zip")
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
                z.writestr("customizations.xml", data)
            put("solution", b"\x00" + buf.getvalue(), "stored.zip")
    # Router: requests on the demo organisation, as the tests send them.
    auth = "Authorization: Bearer $ADMIN\nContent-Type: application/json\n"
    user = "Authorization: Bearer $USER\nContent-Type: application/json\n"
    root = "Authorization: Bearer $ROOT\nContent-Type: application/json\n"
    o = "/api/v1/orgs/demo"
    web = "/api/data/v9.2/"
    reqs = [
        ("GET", "/health", "", ""), ("GET", "/metrics", "", ""), ("GET", "/api/v1/openapi.json", "", ""),
        ("GET", "/api/v1/orgs", root, ""), ("POST", "/api/v1/orgs", root, '{"name":"scratch"}'),
        ("DELETE", "/api/v1/orgs/nope", root, ""),
        ("POST", o + "/check", auth, '{"user":"rep_east","privilege":"read","record":"acc-0001"}'),
        ("POST", o + "/explain", user, '{"privilege":"write","record":"acc-0001"}'),
        ("POST", o + "/check", user, '{"privilege":"create","table":"account"}'),
        ("GET", o + "/records/acc-0001", user, ""), ("GET", o + "/records/acc-0001/who-has-access", auth, ""),
        ("GET", o + "/records/acc-0001/access?user=rep_east", auth, ""),
        ("GET", o + "/tables/account/records?filter=name%20eq%20'x'&order=name%20desc&limit=2", user, ""),
        ("GET", o + "/tables/account/records?cursor=00.7b7d", user, ""),
        ("POST", o + "/operations", user, '[{"op":"insert_record","id":"n1","table":"account","owner":"rep_east"}]'),
        ("POST", o + "/operations?dry_run=true", auth, '[{"op":"assign_role","principal":"rep_east","role":"Sales Manager"}]'),
        ("POST", o + "/operations", user, '{"op":"no_such_op"}'),
        ("POST", o + "/operations", auth, '[{"op":"delete_record","record":"acc-0001"},{"op":"delete_record","record":"nope"}]'),
        ("GET", o + "/digest", auth, ""), ("GET", o + "/revision?min_revision=1", auth, ""),
        ("GET", o + "/audit?limit=5", auth, ""), ("GET", o + "/audit/verify", auth, ""),
        ("GET", o + "/apps", auth, ""), ("GET", o + "/apps/Customer%20Service%20Workspace/access?user=stuck_user", auth, ""),
        ("GET", o + "/roles", auth, ""), ("GET", o + "/roles/Sales%20Representative", auth, ""),
        ("POST", o + "/roles/Sales%20Representative/copy", auth, '{"name":"Rep Copy"}'),
        ("GET", o + "/rules", auth, ""), ("POST", o + "/rules", auth, '{"role":"Sales Representative","direct_only":true}'),
        ("GET", o + "/rules/violations", auth, ""), ("GET", o + "/licences", auth, ""),
        ("GET", o + "/export?records=true", auth, ""), ("GET", o + "/review?format=csv", auth, ""),
        ("POST", o + "/api-keys", root, '{"user":"rep_east"}'),
        ("POST", o + "/roles/import?dry_run=true", auth, json.dumps(xmls[0][1].decode("utf-8", "replace")[:4000]) if xmls else '""'),
        ("POST", "/access/v1/evaluation", user,
         '{"subject":{"type":"user","id":"rep_east"},"action":{"name":"read"},"resource":{"type":"account","id":"acc-0001"}}'),
        ("POST", "/access/v1/search/resource", user,
         '{"subject":{"type":"user","id":"rep_east"},"action":{"name":"read"},"resource":{"type":"account"}}'),
        ("GET", web + "WhoAmI()", user, ""), ("GET", web + "$metadata", user, ""),
        ("GET", web + "accounts?$select=name&$orderby=name%20desc&$top=2&$count=true", user, ""),
        ("GET", web + "accounts?$filter=contains(name,'a')&$expand=owninguser($select=fullname)", user, ""),
        ("GET", web + "accounts?$top=3&$expand=contact_customer_accounts($select=fullname;$filter=startswith(fullname,@p);"
         "$orderby=fullname%20desc;$top=2;$expand=parentcustomerid($select=name)),primarycontactid($select=fullname;"
         "$expand=owninguser($select=fullname))&@p='A'", user, ""),
        ("GET", web + "accounts(name='x')", user, ""), ("GET", web + "accounts/$count", user, ""),
        ("GET", web + "accounts(7e57ab1e-0000-4000-8000-000000000001)/contact_customer_accounts?$select=fullname"
         "&$filter=startswith(fullname,'A')&$orderby=fullname&$top=2&$count=true", user, ""),
        ("GET", web + "contacts(7e57ab1e-0000-4000-8000-000000000003)/parentcustomerid_account?$select=name"
         "&$expand=owninguser($select=fullname;$expand=businessunitid($select=name))", user, ""),
        ("GET", web + "systemusers(7e57ab1e-0000-4000-8000-000000000002)/systemuserroles_association?$select=name&$top=1",
         auth + "Prefer: odata.maxpagesize=1\n", ""),
        ("GET", web + "teams(name='Sales')/teammembership_association?$skiptoken=1", user, ""),
        ("GET", web + "accounts?fetchXml=%3Cfetch%2F%3E", user, ""),
        ("POST", web + "contacts", user, '{"firstname":"John","lastname":"Doe"}'),
        ("PATCH", web + "accounts(7e57ab1e-0000-4000-8000-000000000001)", user, '{"name":"x"}'),
        ("DELETE", web + "accounts(7e57ab1e-0000-4000-8000-000000000001)", user, ""),
        ("GET", web + "systemusers?$select=domainname", auth + "MSCRMCallerID: 7e57ab1e-0000-4000-8000-000000000002\n", ""),
        ("POST", web + "GrantAccess", auth, '{"Target":{"accountid":"7e57ab1e-0000-4000-8000-000000000001","@odata.type":"Microsoft.Dynamics.CRM.account"},"PrincipalAccess":{"Principal":{"systemuserid":"7e57ab1e-0000-4000-8000-000000000002","@odata.type":"Microsoft.Dynamics.CRM.systemuser"},"AccessMask":"ReadAccess"}}'),
        ("POST", web + "$batch", user.replace("application/json", "multipart/mixed;boundary=" + boundary), one),
        ("GET", "/console/users", "Cookie: strata_session=x\n", ""), ("GET", "/console", "", ""),
        ("POST", "/console/roles/Sales%20Representative", "Content-Type: application/x-www-form-urlencoded\n", "csrf=x&name=y"),
    ]
    for method, path, headers, body in reqs:
        put("router", f"{method} {path}\n{headers}\n{body}")

    # Checkpoints: the demo's own (odd first byte, no edits), a byte of it changed, cut short,
    # and raw bytes (even first byte); the target makes the real checkpoint itself.
    put("checkpoint", b"\x01", "unedited")
    put("checkpoint", b"\x01" + (40).to_bytes(4, "little") + b"\xff", "one-byte-changed")
    put("checkpoint", b"\x01" + (200).to_bytes(4, "little")[:3], "cut-short")
    put("checkpoint", b"\x00STRATA", "raw")


if __name__ == "__main__":
    main()
