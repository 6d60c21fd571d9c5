// Strata's Web API driven by a real Dataverse client: the npm `dynamics-web-api` package,
// unchanged, against a running `strata demo`. Each step asserts its result and prints one line;
// the first failure stops the run with a non-zero exit and says what was expected.
//
// Environment:
//   STRATA_URL         the server, e.g. http://127.0.0.1:8080 (https:// with NODE_EXTRA_CA_CERTS
//                      naming the demo's self-signed certificate)
//   STRATA_ADMIN_KEY   the demo's `--admin-key` (the System Administrator `admin`)
//   STRATA_ROOT_KEY    the demo's `--root-key`: creates API keys for `clerk` and `rep_west`
//   STRATA_ORG         the organisation (default `demo`)
//   STRATA_SKIP_BATCH  `1` skips the three `$batch` steps (only for a server without `$batch`);
//                      they run unless this is set
//
// Run it with `node client.mjs` after `npm ci` in this folder. The records it writes carry a
// random suffix, so it can run again against the same demo database.

import { randomUUID } from "node:crypto";
import { DynamicsWebApi } from "dynamics-web-api";

// The client honours lowercase http_proxy/https_proxy and knows no NO_PROXY: a proxy would
// swallow every request to the local server.
for (const name of ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"]) {
  delete process.env[name];
}

const serverUrl = required("STRATA_URL").replace(/\/+$/, "");
const adminKey = required("STRATA_ADMIN_KEY");
const rootKey = required("STRATA_ROOT_KEY");
const org = process.env.STRATA_ORG || "demo";
const skipBatch = process.env.STRATA_SKIP_BATCH === "1";
const run = randomUUID().slice(0, 8);

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ACCESS_DENIED = "0x80040220";
const DOES_NOT_EXIST = "0x80040217";

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set (see the top of client.mjs)`);
    process.exit(2);
  }
  return value;
}

/** A client with a static token, as an application with its own token source builds it. */
function client(token) {
  return new DynamicsWebApi({
    serverUrl,
    dataApi: { version: "9.2" },
    onTokenRefresh: async () => token,
  });
}

class Failure extends Error {}

function check(condition, message) {
  if (!condition) {
    throw new Failure(message);
  }
}

function equal(actual, expected, what) {
  check(
    actual === expected,
    `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`,
  );
}

function describe(error) {
  if (error instanceof Failure) {
    return error.message;
  }
  if (error && error.status !== undefined) {
    return `HTTP ${error.status} ${error.code ?? ""} ${error.message ?? ""}`.trim();
  }
  return error && error.stack ? error.stack : String(error);
}

let steps = 0;

/** Runs one step; stops the whole run at its first failure. */
async function step(name, body) {
  steps += 1;
  try {
    const detail = await body();
    console.log(`ok ${steps} - ${name}${detail ? ` (${detail})` : ""}`);
  } catch (error) {
    console.log(`not ok ${steps} - ${name}`);
    console.error(`FAILED step ${steps} "${name}": ${describe(error)}`);
    process.exit(1);
  }
}

/** The call must be refused with this HTTP status and Dataverse error code. */
async function refused(call, status, code, what) {
  let outcome;
  try {
    outcome = await call();
  } catch (error) {
    check(
      error && error.status === status && error.code === code,
      `${what}: expected HTTP ${status} ${code}, got ${describe(error)}`,
    );
    return error;
  }
  throw new Failure(`${what}: expected HTTP ${status} ${code}, but it succeeded: ${JSON.stringify(outcome)}`);
}

/** An API key for a demo user, made with the root key through Strata's native API. */
async function apiKey(user) {
  const response = await fetch(`${serverUrl}/api/v1/orgs/${org}/api-keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${rootKey}`, "content-type": "application/json" },
    body: JSON.stringify({ user }),
  });
  const text = await response.text();
  check(response.status === 201, `creating an API key for ${user}: HTTP ${response.status} ${text}`);
  return JSON.parse(text).key;
}

/** The rights RetrievePrincipalAccess reports, as a set. */
function rights(answer) {
  check(typeof answer?.AccessRights === "string", `no AccessRights in ${JSON.stringify(answer)}`);
  return new Set(answer.AccessRights.split(",").map((r) => r.trim()).filter((r) => r && r !== "None"));
}

/** The privilege names RetrieveUserPrivileges reports. */
function privilegeNames(answer) {
  check(Array.isArray(answer?.RolePrivileges), `no RolePrivileges in ${JSON.stringify(answer)}`);
  return new Set(answer.RolePrivileges.map((p) => p.PrivilegeName));
}

const admin = client(adminKey);
let clerk;
let grantee;
const ids = {};

await step("setup: API keys for clerk and rep_west (native API, root key)", async () => {
  clerk = client(await apiKey("clerk"));
  grantee = client(await apiKey("rep_west"));
});

await step("WhoAmI for admin, clerk and rep_west", async () => {
  const me = await admin.callFunction("WhoAmI");
  for (const field of ["UserId", "BusinessUnitId", "OrganizationId"]) {
    check(GUID.test(me[field] ?? ""), `WhoAmI.${field} is not a GUID: ${JSON.stringify(me)}`);
  }
  const c = await clerk.callFunction("WhoAmI");
  const g = await grantee.callFunction("WhoAmI");
  equal(c.OrganizationId, me.OrganizationId, "clerk's OrganizationId");
  check(new Set([me.UserId, c.UserId, g.UserId]).size === 3, "three users, three different UserIds");
  check(c.BusinessUnitId !== me.BusinessUnitId, "clerk (Sales North America) and admin (Contoso) are in different units");
  let unknown;
  try {
    unknown = await client(`not-a-key-${run}`).callFunction("WhoAmI");
  } catch (error) {
    unknown = error;
  }
  equal(unknown?.status, 401, "WhoAmI with an unknown token: HTTP status");
  ids.admin = me.UserId;
  ids.clerk = c.UserId;
  ids.grantee = g.UserId;
  return `admin ${me.UserId}`;
});

await step("EntityDefinitions(LogicalName='account') with $select", async () => {
  const account = await admin.retrieveEntity({
    key: "LogicalName='account'",
    select: ["LogicalName", "EntitySetName", "PrimaryIdAttribute"],
  });
  equal(account.LogicalName, "account", "LogicalName");
  equal(account.EntitySetName, "accounts", "EntitySetName");
  equal(account.PrimaryIdAttribute, "accountid", "PrimaryIdAttribute");
  check(!("OwnershipType" in account), `$select returned more than asked: ${Object.keys(account)}`);
});

await step("EntityDefinitions filtered on LogicalName", async () => {
  const list = await admin.retrieveEntities({
    select: ["LogicalName", "EntitySetName"],
    filter: "LogicalName eq 'account' or LogicalName eq 'contact'",
  });
  const names = list.value.map((e) => e.LogicalName).sort();
  equal(JSON.stringify(names), JSON.stringify(["account", "contact"]), "the entities listed");
});

const accountNumber = `WNODE-${run}`;

await step("create returns the GUID from OData-EntityId", async () => {
  ids.account = await admin.create({
    collection: "accounts",
    data: { name: `Client Test ${run}`, accountnumber: accountNumber, annualrevenue: 1234 },
  });
  check(GUID.test(ids.account ?? ""), `create returned ${JSON.stringify(ids.account)}, not a GUID`);
  return ids.account;
});

await step("create with returnRepresentation and $select", async () => {
  const created = await admin.create({
    collection: "accounts",
    data: { name: `Client Test Representation ${run}`, address1_city: "Lisbon" },
    returnRepresentation: true,
    select: ["name", "address1_city"],
  });
  check(GUID.test(created.accountid ?? ""), `no accountid in ${JSON.stringify(created)}`);
  equal(created.name, `Client Test Representation ${run}`, "name");
  equal(created.address1_city, "Lisbon", "address1_city");
  check(!("annualrevenue" in created), "$select returned a column not asked for");
  ids.representation = created.accountid;
});

await step("retrieve by id with $select, and conditionally (If-None-Match: 304)", async () => {
  const account = await admin.retrieve({
    collection: "accounts",
    key: ids.account,
    select: ["name", "annualrevenue"],
  });
  equal(account.accountid, ids.account, "accountid");
  equal(account.name, `Client Test ${run}`, "name");
  equal(account.annualrevenue, 1234, "annualrevenue");
  check(!("accountnumber" in account), "$select returned accountnumber, not asked for");
  // A conditional retrieve with the record's ETag: 304, no entity.
  const unchanged = await admin.retrieve({
    collection: "accounts",
    key: ids.account,
    select: ["name"],
    ifnonematch: account["@odata.etag"],
  });
  check(!unchanged?.name, `If-None-Match with the current ETag answered ${JSON.stringify(unchanged)}`);
});

await step("retrieve by alternate key accountnumber='…'", async () => {
  const mine = await admin.retrieve({
    collection: "accounts",
    key: `accountnumber='${accountNumber}'`,
    select: ["name", "accountnumber"],
  });
  equal(mine.accountid, ids.account, "the account found by its number");
  const story = await admin.retrieve({
    collection: "accounts",
    key: "accountnumber='ACC-0001'",
    select: ["name", "accountnumber"],
  });
  equal(story.accountnumber, "ACC-0001", "the demo's ACC-0001");
  await refused(
    () => admin.retrieve({ collection: "accounts", key: `accountnumber='NONE-${run}'` }),
    404,
    DOES_NOT_EXIST,
    "an alternate key nothing has",
  );
});

await step("update (If-Match: *) changes the record", async () => {
  const done = await admin.update({
    collection: "accounts",
    key: ids.account,
    data: { name: `Client Test ${run} updated`, annualrevenue: 4321 },
  });
  equal(done, true, "update's result");
  const account = await admin.retrieve({ collection: "accounts", key: ids.account, select: ["name", "annualrevenue"] });
  equal(account.name, `Client Test ${run} updated`, "name after update");
  equal(account.annualrevenue, 4321, "annualrevenue after update");
});

await step("update with returnRepresentation answers the entity", async () => {
  const account = await admin.update({
    collection: "accounts",
    key: ids.account,
    data: { address1_city: "Porto" },
    returnRepresentation: true,
    select: ["name", "address1_city"],
  });
  equal(account.accountid, ids.account, "accountid");
  equal(account.address1_city, "Porto", "address1_city");
});

await step("update with a stale ETag (If-Match) is 412: false, and changes nothing", async () => {
  const first = await admin.retrieve({ collection: "accounts", key: ids.account, select: ["name"] });
  check(typeof first["@odata.etag"] === "string", `no @odata.etag in ${JSON.stringify(first)}`);
  equal(
    await admin.update({ collection: "accounts", key: ids.account, data: { annualrevenue: 5000 }, ifmatch: first["@odata.etag"] }),
    true,
    "update with the current ETag",
  );
  equal(
    await admin.update({ collection: "accounts", key: ids.account, data: { annualrevenue: 6000 }, ifmatch: first["@odata.etag"] }),
    false,
    "update with the old ETag",
  );
  const now = await admin.retrieve({ collection: "accounts", key: ids.account, select: ["annualrevenue"] });
  equal(now.annualrevenue, 5000, "annualrevenue after the refused update");
  check(now["@odata.etag"] !== first["@odata.etag"], "the ETag did not change with the record");
});

await step("createdon, modifiedon, createdby, modifiedby: read, synchronised by modifiedon, ordered by createdon", async () => {
  // The client turns ISO 8601 values into Date objects: Strata's are whole seconds, UTC.
  const time = (value, what) => {
    const date = value instanceof Date ? value : new Date(value);
    check(!Number.isNaN(date.getTime()), `${what} ${JSON.stringify(value)} is not a time`);
    check(date.getTime() % 1000 === 0, `${what} ${date.toISOString()} is not whole seconds`);
    return date.getTime();
  };
  const account = await admin.retrieve({
    collection: "accounts",
    key: ids.account,
    select: ["createdon", "modifiedon", "_createdby_value", "_modifiedby_value"],
  });
  const created = time(account.createdon, "createdon");
  const modified = time(account.modifiedon, "modifiedon");
  check(modified >= created, `modified ${modified} before created ${created}`);
  const age = Date.now() - created;
  check(age > -5000 && age < 3600000, `createdon ${new Date(created).toISOString()} is not a moment ago`);
  equal(account._createdby_value, ids.admin, "_createdby_value");
  equal(account._modifiedby_value, ids.admin, "_modifiedby_value");
  // A client synchronising: what changed since the record was created, by this writer.
  const since = new Date(created).toISOString().replace(".000Z", "Z");
  const changed = await admin.retrieveAll({
    collection: "accounts",
    select: ["name", "modifiedon"],
    filter: `modifiedon ge ${since} and _modifiedby_value eq ${ids.admin}`,
  });
  check(changed.value.some((a) => a.accountid === ids.account), "the record is not among those modified since it was created");
  check(changed.value.every((a) => time(a.modifiedon, "modifiedon") >= created), "a record modified before the filter's time");
  const newest = await admin.retrieveMultiple({ collection: "accounts", select: ["createdon"], orderBy: ["createdon desc"], top: 20 });
  const times = newest.value.map((a) => time(a.createdon, "createdon"));
  check(times.every((t, i) => i === 0 || t <= times[i - 1]), `not newest first: ${times.join(", ")}`);
  check(times[0] >= created, `the newest record (${times[0]}) is older than one just created`);
  return `created ${since}, ${changed.value.length} changed since`;
});

await step("update of a missing id is 404 and creates nothing", async () => {
  const missing = randomUUID();
  let result;
  try {
    result = await admin.update({ collection: "accounts", key: missing, data: { name: `Ghost ${run}` } });
  } catch (error) {
    check(error.status === 404 && error.code === DOES_NOT_EXIST, `expected 404 ${DOES_NOT_EXIST}, got ${describe(error)}`);
    result = false;
  }
  equal(result, false, "update of a missing record");
  await refused(() => admin.retrieve({ collection: "accounts", key: missing }), 404, DOES_NOT_EXIST, "the missing id afterwards");
});

await step("upsert creates a missing record, then updates it", async () => {
  ids.upserted = randomUUID();
  await admin.upsert({
    collection: "accounts",
    key: ids.upserted,
    data: { name: `Client Test Upsert ${run}`, annualrevenue: 10 },
  });
  let account = await admin.retrieve({ collection: "accounts", key: ids.upserted, select: ["name"] });
  equal(account.name, `Client Test Upsert ${run}`, "the upserted record's name");
  await admin.upsert({ collection: "accounts", key: ids.upserted, data: { name: `Client Test Upsert ${run} again` } });
  account = await admin.retrieve({ collection: "accounts", key: ids.upserted, select: ["name"] });
  equal(account.name, `Client Test Upsert ${run} again`, "the name after the second upsert");
});

await step("upsert with If-None-Match: * leaves an existing record alone", async () => {
  const result = await admin.upsert({
    collection: "accounts",
    key: ids.upserted,
    data: { name: `Client Test Upsert ${run} overwritten` },
    ifnonematch: "*",
  });
  equal(result, null, "upsert's result when the record exists (412)");
  const account = await admin.retrieve({ collection: "accounts", key: ids.upserted, select: ["name"] });
  equal(account.name, `Client Test Upsert ${run} again`, "the name after the refused create");
});

await step("deleteRecord, and a delete of a missing id is 404", async () => {
  const done = await admin.deleteRecord({ collection: "accounts", key: ids.upserted });
  equal(done, true, "deleteRecord's result");
  await refused(() => admin.retrieve({ collection: "accounts", key: ids.upserted }), 404, DOES_NOT_EXIST, "the deleted record");
  await refused(() => admin.deleteRecord({ collection: "accounts", key: ids.upserted }), 404, DOES_NOT_EXIST, "deleting it again");
});

// Accounts with revenue, by name then revenue: what a paging client walks through.
const pagedQuery = {
  collection: "accounts",
  select: ["name", "annualrevenue"],
  filter: "annualrevenue gt 0 and not startswith(name,'zzz')",
  orderBy: ["name asc", "annualrevenue desc"],
  maxPageSize: 7,
};

function inOrder(a, b) {
  if (a.name !== b.name) {
    return a.name < b.name;
  }
  return a.annualrevenue >= b.annualrevenue;
}

await step("a filtered, ordered query in pages of 7, following @odata.nextLink to the end", async () => {
  const total = await admin.count({ collection: "accounts", filter: pagedQuery.filter });
  check(total > 14, `the demo should have more than two pages of accounts with revenue, has ${total}`);
  const seen = [];
  let pages = 0;
  let page = await admin.retrieveMultiple(pagedQuery);
  for (;;) {
    pages += 1;
    check(page.value.length <= 7, `page ${pages} has ${page.value.length} records, more than 7`);
    seen.push(...page.value);
    if (!page.oDataNextLink) {
      break;
    }
    check(page.value.length === 7, `page ${pages} is short (${page.value.length}) but has a next link`);
    check(pages < 1000, "more than 1000 pages");
    page = await admin.retrieveMultiple(pagedQuery, page.oDataNextLink);
  }
  equal(seen.length, total, "records over all pages (the filtered count)");
  equal(pages, Math.ceil(total / 7), "pages");
  equal(new Set(seen.map((a) => a.accountid)).size, seen.length, "distinct records");
  for (let i = 1; i < seen.length; i += 1) {
    check(
      inOrder(seen[i - 1], seen[i]),
      `order broken at ${i}: ${JSON.stringify(seen[i - 1])} before ${JSON.stringify(seen[i])}`,
    );
    check(seen[i].annualrevenue > 0, `a record outside the filter: ${JSON.stringify(seen[i])}`);
  }
  const counted = await admin.retrieveMultiple({ ...pagedQuery, count: true });
  equal(counted.oDataCount, total, "@odata.count of the first page");
  const all = await admin.retrieveAll(pagedQuery);
  equal(
    JSON.stringify(all.value.map((a) => a.accountid)),
    JSON.stringify(seen.map((a) => a.accountid)),
    "retrieveAll's records against the pages walked",
  );
  return `${total} records in ${pages} pages`;
});

await step("$top with pages of 7 stops at $top", async () => {
  const query = { ...pagedQuery, top: 10 };
  const first = await admin.retrieveMultiple(query);
  equal(first.value.length, 7, "the first page");
  check(first.oDataNextLink, "no @odata.nextLink before $top is reached");
  const second = await admin.retrieveMultiple(query, first.oDataNextLink);
  equal(second.value.length, 3, "the second page");
  check(!second.oDataNextLink, `a next link after $top: ${second.oDataNextLink}`);
  const all = await admin.retrieveAll(query);
  equal(all.value.length, 10, "retrieveAll with $top");
});

await step("FetchXML: fetch pages by paging cookie, fetchAll walks them all as the OData list", async () => {
  const fetchXml =
    '<fetch count="7"><entity name="account"><attribute name="name"/><attribute name="annualrevenue"/>' +
    '<filter><condition attribute="annualrevenue" operator="gt" value="0"/>' +
    '<condition attribute="name" operator="not-begin-with" value="zzz"/></filter>' +
    '<order attribute="name"/><order attribute="annualrevenue" descending="true"/></entity></fetch>';
  const includeAnnotations = "Microsoft.Dynamics.CRM.fetchxmlpagingcookie";
  const listed = await admin.retrieveAll(pagedQuery);
  const ids = (records) => JSON.stringify(records.map((a) => a.accountid));
  const first = await admin.fetch({ collection: "accounts", fetchXml, includeAnnotations });
  equal(ids(first.value), ids(listed.value.slice(0, 7)), "the first page");
  check(first.PagingInfo && first.PagingInfo.nextPage === 2, `no paging cookie: ${JSON.stringify(first.PagingInfo)}`);
  const second = await admin.fetch({
    collection: "accounts",
    fetchXml,
    includeAnnotations,
    pageNumber: first.PagingInfo.nextPage,
    pagingCookie: first.PagingInfo.cookie,
  });
  equal(ids(second.value), ids(listed.value.slice(7, 14)), "the second page, by its cookie");
  const all = await admin.fetchAll({ collection: "accounts", fetchXml, includeAnnotations });
  equal(ids(all.value), ids(listed.value), "fetchAll against retrieveAll of the same query");
  return `${all.value.length} records in ${Math.ceil(all.value.length / 7)} pages`;
});

await step("FetchXML link-entity: contacts with their account's name, read back as an alias object", async () => {
  const fetchXml =
    '<fetch count="50"><entity name="contact"><attribute name="fullname"/><attribute name="parentcustomerid"/>' +
    '<link-entity name="account" from="accountid" to="parentcustomerid" alias="acct"><attribute name="name"/></link-entity>' +
    "</entity></fetch>";
  const page = await admin.fetch({ collection: "contacts", fetchXml });
  check(page.value.length > 0, "no contact with an account");
  for (const contact of page.value.slice(0, 5)) {
    check(contact.acct && typeof contact.acct.name === "string", `no acct.name in ${JSON.stringify(contact)}`);
    const account = await admin.retrieve({
      collection: "accounts",
      key: contact._parentcustomerid_value,
      select: ["name"],
    });
    equal(contact.acct.name, account.name, "the linked account's name");
  }
  // link-type="exists" from the account's key: the accounts some contact names, one row each.
  const contacts = await admin.retrieveAll({ collection: "contacts", select: ["_parentcustomerid_value"] });
  const named = new Set(contacts.value.map((c) => c._parentcustomerid_value).filter((id) => id));
  const withContacts = await admin.fetchAll({
    collection: "accounts",
    fetchXml:
      '<fetch count="50"><entity name="account"><attribute name="name"/>' +
      '<link-entity name="contact" from="parentcustomerid" to="accountid" link-type="exists"/></entity></fetch>',
  });
  const listed = withContacts.value.map((a) => a.accountid);
  equal(new Set(listed).size, listed.length, "one row an account");
  const accounts = await admin.retrieveAll({ collection: "accounts", select: ["name"] });
  const expected = accounts.value.map((a) => a.accountid).filter((id) => named.has(id));
  check(expected.length > 0, "no account that a contact names");
  equal(JSON.stringify([...listed].sort()), JSON.stringify(expected.sort()), "the accounts contacts name");
  return `${page.value.length} contacts with their account; ${listed.length} accounts with a contact`;
});

await step("aggregates: $apply (retrieveMultiple's apply) and FetchXML aggregate, as each caller reads", async () => {
  const listed = await admin.retrieveAll({ ...pagedQuery, select: ["annualrevenue", "_ownerid_value"] });
  const total = listed.value.reduce((sum, a) => sum + a.annualrevenue, 0);
  const applied = await admin.retrieveMultiple({
    collection: "accounts",
    apply: `filter(${pagedQuery.filter})/aggregate(annualrevenue with sum as total,$count as n)`,
  });
  equal(applied.value.length, 1, "one row without groupby");
  equal(applied.value[0].n, listed.value.length, "$count against the list");
  equal(applied.value[0].total, total, "the sum against the list's");
  const owners = {};
  for (const a of listed.value) {
    owners[a._ownerid_value] = (owners[a._ownerid_value] ?? 0) + 1;
  }
  const grouped = await admin.retrieveMultiple({
    collection: "accounts",
    apply: `filter(${pagedQuery.filter})/groupby((_ownerid_value),aggregate($count as n))`,
  });
  equal(grouped.value.length, Object.keys(owners).length, "a row per owner");
  for (const row of grouped.value) {
    equal(row.n, owners[row._ownerid_value], `owner ${row._ownerid_value}'s accounts`);
  }
  const fetchXml =
    '<fetch aggregate="true"><entity name="account">' +
    '<attribute name="annualrevenue" aggregate="sum" alias="total"/><attribute name="accountid" aggregate="count" alias="n"/>' +
    '<filter><condition attribute="annualrevenue" operator="gt" value="0"/>' +
    '<condition attribute="name" operator="not-begin-with" value="zzz"/></filter></entity></fetch>';
  const fetched = await admin.fetch({ collection: "accounts", fetchXml });
  equal(fetched.value[0].n, listed.value.length, "FetchXML count against the list");
  equal(fetched.value[0].total, total, "FetchXML sum against the list's");
  // rep_west counts what rep_west reads, not what admin does.
  const theirs = await grantee.retrieveAll({ collection: "accounts", select: ["name"] });
  const counted = await grantee.retrieveMultiple({ collection: "accounts", apply: "aggregate($count as n)" });
  equal(counted.value[0].n, theirs.value.length, "rep_west's $count against rep_west's list");
  check(theirs.value.length < (await admin.count({ collection: "accounts" })), "rep_west reads fewer accounts than admin");
  return `${listed.value.length} accounts, ${Object.keys(owners).length} owners, rep_west counts ${theirs.value.length}`;
});

await step("count: accounts/$count and $count=true with a filter", async () => {
  const all = await admin.count({ collection: "accounts" });
  const filtered = await admin.count({ collection: "accounts", filter: pagedQuery.filter });
  check(Number.isInteger(all) && Number.isInteger(filtered), `counts are not numbers: ${all}, ${filtered}`);
  const listed = await admin.retrieveAll({ collection: "accounts", select: ["name"] });
  equal(all, listed.value.length, "$count against the whole list");
  check(filtered <= all, `the filtered count ${filtered} is above the total ${all}`);
  return `${all} accounts, ${filtered} with revenue`;
});

await step("$expand of a single-valued lookup (contact → parentcustomerid)", async () => {
  const contacts = await admin.retrieveMultiple({
    collection: "contacts",
    select: ["fullname", "_parentcustomerid_value"],
    expand: [{ property: "parentcustomerid", select: ["name", "accountnumber"] }],
    top: 50,
  });
  check(contacts.value.length > 0, "no contacts");
  let linked = 0;
  for (const contact of contacts.value) {
    const parent = contact.parentcustomerid;
    if (contact._parentcustomerid_value) {
      check(parent && parent.accountid === contact._parentcustomerid_value, `contact ${contact.contactid}: the expanded account ${JSON.stringify(parent)} is not its lookup ${contact._parentcustomerid_value}`);
      check(typeof parent.name === "string", `the expanded account has no name: ${JSON.stringify(parent)}`);
      check(!("annualrevenue" in parent), "the nested $select returned a column not asked for");
      linked += 1;
    } else {
      check(parent === null || parent === undefined, `contact ${contact.contactid} has no lookup but expands to ${JSON.stringify(parent)}`);
    }
  }
  check(linked > 0, "no contact with a parent account among the first 50");
  const one = contacts.value.find((c) => c._parentcustomerid_value);
  const single = await admin.retrieve({
    collection: "contacts",
    key: one.contactid,
    select: ["fullname"],
    expand: [{ property: "parentcustomerid", select: ["name"] }],
  });
  equal(single.parentcustomerid?.accountid, one._parentcustomerid_value, "the expanded parent on retrieve");
  const owned = await admin.retrieve({
    collection: "accounts",
    key: ids.account,
    select: ["name", "_ownerid_value"],
    expand: [{ property: "ownerid" }],
  });
  equal(owned._ownerid_value, ids.admin, "the new account's owner");
  equal(owned.ownerid?.systemuserid, ids.admin, "the expanded ownerid");
  return `${linked} of ${contacts.value.length} contacts expanded`;
});

await step("$batch: a create in a change set and a GET", async () => {
  if (skipBatch) {
    return "SKIPPED: STRATA_SKIP_BATCH=1";
  }
  admin.startBatch();
  admin.create({ collection: "contacts", data: { fullname: `Batch Contact ${run}` }, contentId: "1" });
  admin.retrieveMultiple({ collection: "accounts", select: ["name"], top: 1 });
  const results = await admin.executeBatch();
  check(Array.isArray(results) && results.length === 2, `expected two results, got ${JSON.stringify(results)}`);
  const [created, listed] = results;
  check(!(created instanceof Error) && GUID.test(String(created)), `the change set's create answered ${describe(created)}`);
  check(Array.isArray(listed?.value) && listed.value.length === 1, `the GET answered ${JSON.stringify(listed)}`);
  const contact = await admin.retrieve({ collection: "contacts", key: String(created), select: ["fullname"] });
  equal(contact.fullname, `Batch Contact ${run}`, "the contact the batch created");
  return `contact ${created}`;
});

await step("$batch: a change set is atomic — one refused request, nothing written", async () => {
  if (skipBatch) {
    return "SKIPPED: STRATA_SKIP_BATCH=1";
  }
  const fullname = `Atomic Contact ${run}`;
  admin.startBatch();
  admin.create({ collection: "contacts", data: { fullname } });
  admin.update({ collection: "accounts", key: randomUUID(), data: { name: `Ghost ${run}` } });
  let results;
  try {
    results = await admin.executeBatch();
  } catch (error) {
    results = error;
  }
  // A failed part is an Error carrying the part's status and its body (`error.code`).
  const partCode = (part) => part.code ?? part.error?.code;
  const parts = Array.isArray(results) ? results : [results];
  const failure = parts.find((p) => p && p.status !== undefined);
  check(failure && failure.status === 404 && partCode(failure) === DOES_NOT_EXIST, `expected the change set to fail with 404 ${DOES_NOT_EXIST}, got ${JSON.stringify(results)}`);
  const written = await admin.count({ collection: "contacts", filter: `fullname eq '${fullname}'` });
  equal(written, 0, "contacts the failed change set created");

  clerk.startBatch();
  clerk.create({ collection: "accounts", data: { name: `Clerk Batch ${run}` } });
  try {
    results = await clerk.executeBatch();
  } catch (error) {
    results = error;
  }
  const refusal = (Array.isArray(results) ? results : [results]).find((p) => p && p.status !== undefined);
  check(refusal && refusal.status === 403 && partCode(refusal) === ACCESS_DENIED, `expected the clerk's change set to be refused with 403 ${ACCESS_DENIED}, got ${JSON.stringify(results)}`);
  equal(await admin.count({ collection: "accounts", filter: `name eq 'Clerk Batch ${run}'` }), 0, "accounts the clerk's change set created");

  // rep_west may create accounts but not write admin's: the create is not written either.
  const original = await admin.retrieve({ collection: "accounts", key: ids.account });
  grantee.startBatch();
  grantee.create({ collection: "accounts", data: { name: `Rep Batch ${run}` } });
  grantee.update({ collection: "accounts", key: ids.account, data: { name: `Rep was here ${run}` } });
  try {
    results = await grantee.executeBatch();
  } catch (error) {
    results = error;
  }
  const denied = (Array.isArray(results) ? results : [results]).find((p) => p && p.status !== undefined);
  check(denied && denied.status === 403 && partCode(denied) === ACCESS_DENIED, `expected rep_west's change set to be refused with 403 ${ACCESS_DENIED}, got ${JSON.stringify(results)}`);
  equal(await admin.count({ collection: "accounts", filter: `name eq 'Rep Batch ${run}'` }), 0, "accounts rep_west's refused change set created");
  const after = await admin.retrieve({ collection: "accounts", key: ids.account });
  equal(after["@odata.etag"], original["@odata.etag"], "admin's account after rep_west's refused change set");
});

await step("a 120-term `or` filter: the client sends a URL over 2000 characters as a one-part $batch", async () => {
  if (skipBatch) {
    return "SKIPPED: STRATA_SKIP_BATCH=1";
  }
  const numbers = Array.from({ length: 120 }, (_, i) => `ACC-${String(i + 1).padStart(4, "0")}`);
  const filter = numbers.map((n) => `accountnumber eq '${n}'`).join(" or ");
  const found = await admin.retrieveMultiple({ collection: "accounts", select: ["accountnumber"], filter });
  check(Array.isArray(found?.value), `the converted request answered ${JSON.stringify(found)}`);
  const wanted = new Set(numbers);
  const all = await admin.retrieveAll({ collection: "accounts", select: ["accountnumber"] });
  const expected = all.value.filter((a) => wanted.has(a.accountnumber)).map((a) => a.accountid).sort();
  equal(
    JSON.stringify(found.value.map((a) => a.accountid).sort()),
    JSON.stringify(expected),
    "the accounts the long filter names",
  );
  return `${expected.length} accounts`;
});

await step("associate and disassociate (teammembership_association)", async () => {
  const teams = await admin.retrieveMultiple({ collection: "teams" });
  const team = teams.value.find((t) => t.name === "Sales EMEA Team");
  check(team && GUID.test(team.teamid ?? ""), `no Sales EMEA Team among ${teams.value.map((t) => t.name)}`);
  const privileges = async () =>
    privilegeNames(await admin.callFunction({ collection: "systemusers", key: ids.clerk, name: "RetrieveUserPrivileges" }));
  // The team's Sales Team Member role gives lead privileges; the clerk has none of its own.
  check(!(await privileges()).has("prvCreateLead"), "the clerk creates leads before joining the team");
  await admin.associate({
    collection: "teams",
    primaryKey: team.teamid,
    relationshipName: "teammembership_association",
    relatedCollection: "systemusers",
    relatedKey: ids.clerk,
  });
  check((await privileges()).has("prvCreateLead"), "a member of Sales EMEA Team, the clerk still lacks prvCreateLead");
  await admin.disassociate({
    collection: "teams",
    primaryKey: team.teamid,
    relationshipName: "teammembership_association",
    relatedKey: ids.clerk,
  });
  check(!(await privileges()).has("prvCreateLead"), "out of the team, the clerk keeps prvCreateLead");
});

await step("associateSingleValued and disassociateSingleValued (contact → parentcustomerid)", async () => {
  const contact = await admin.create({ collection: "contacts", data: { fullname: `Single Valued ${run}` } });
  await admin.associateSingleValued({
    collection: "contacts",
    primaryKey: contact,
    navigationProperty: "parentcustomerid",
    relatedCollection: "accounts",
    relatedKey: ids.account,
  });
  let now = await admin.retrieve({ collection: "contacts", key: contact, select: ["_parentcustomerid_value"] });
  equal(now._parentcustomerid_value, ids.account, "the contact's parent after PUT $ref");
  await admin.disassociateSingleValued({ collection: "contacts", primaryKey: contact, navigationProperty: "parentcustomerid" });
  now = await admin.retrieve({ collection: "contacts", key: contact, select: ["_parentcustomerid_value"] });
  equal(now._parentcustomerid_value, null, "the contact's parent after DELETE $ref");
  equal(await admin.deleteRecord({ collection: "contacts", key: contact }), true, "deleting the contact");
});

await step("deep insert: an account with its contacts (read back through $expand and the navigation property's path), a contact with its account, and formatted values", async () => {
  const account = await admin.create({
    collection: "accounts",
    data: { name: `Deep ${run}`, contact_customer_accounts: [{ fullname: `Deep Child A ${run}` }, { fullname: `Deep Child B ${run}` }] },
  });
  check(GUID.test(account ?? ""), `deep insert returned ${JSON.stringify(account)}`);
  const children = await admin.retrieveMultiple({
    collection: "contacts",
    select: ["fullname"],
    filter: `_parentcustomerid_value eq ${account}`,
    orderBy: ["fullname"],
  });
  equal(children.value.map((c) => c.fullname).join(","), `Deep Child A ${run},Deep Child B ${run}`, "the account's contacts");
  // The same contacts through a collection-valued $expand, with the item's options.
  const expandedContacts = async (options) => {
    const expanded = await admin.retrieve({
      collection: "accounts",
      key: account,
      select: ["name"],
      expand: [{ property: "contact_customer_accounts", select: ["fullname"], ...options }],
    });
    return expanded.contact_customer_accounts ?? [];
  };
  const fullnames = (contacts) => contacts.map((c) => c.fullname).join(",");
  equal(
    fullnames(await expandedContacts({})).split(",").sort().join(","),
    `Deep Child A ${run},Deep Child B ${run}`,
    "the account's contacts through $expand",
  );
  // $orderby and $filter inside the collection, and a nested $expand back to the account.
  equal(
    fullnames(await expandedContacts({ orderBy: ["fullname desc"] })),
    `Deep Child B ${run},Deep Child A ${run}`,
    "the account's contacts through $expand with $orderby",
  );
  const kept = await expandedContacts({
    filter: `fullname ne 'Deep Child A ${run}'`,
    expand: [{ property: "parentcustomerid", select: ["name"] }],
  });
  equal(fullnames(kept), `Deep Child B ${run}`, "the account's contacts through $expand with $filter");
  equal(kept[0]?.parentcustomerid?.name, `Deep ${run}`, `the nested $expand in ${JSON.stringify(kept)}`);
  // The same contacts through the navigation property's path (`accounts(<id>)/contact_customer_accounts`).
  const viaPath = await admin.retrieve({
    collection: "accounts",
    key: account,
    navigationProperty: "contact_customer_accounts",
    select: ["fullname"],
  });
  equal(
    fullnames(viaPath.value ?? []).split(",").sort().join(","),
    `Deep Child A ${run},Deep Child B ${run}`,
    `the account's contacts through the navigation property in ${JSON.stringify(viaPath)}`,
  );
  const contact = await admin.create({
    collection: "contacts",
    data: { fullname: `Deep Contact ${run}`, parentcustomerid_account: { name: `Deep Parent ${run}` } },
    returnRepresentation: true,
    select: ["fullname", "_parentcustomerid_value"],
  });
  const parent = await admin.retrieve({ collection: "accounts", key: contact._parentcustomerid_value, select: ["name"] });
  equal(parent.name, `Deep Parent ${run}`, "the contact's new account");
  // The polymorphic lookup by its Dataverse name, as a path and in $expand.
  const viaLookup = await admin.retrieve({
    collection: "contacts",
    key: contact.contactid,
    navigationProperty: "parentcustomerid_account",
    select: ["name"],
  });
  equal(viaLookup.name, `Deep Parent ${run}`, `the contact's account through the navigation property in ${JSON.stringify(viaLookup)}`);
  const withAccount = await admin.retrieve({
    collection: "contacts",
    key: contact.contactid,
    select: ["fullname"],
    expand: [{ property: "parentcustomerid_account", select: ["name"] }],
  });
  equal(withAccount.parentcustomerid_account?.name, `Deep Parent ${run}`, `the polymorphic lookup expanded in ${JSON.stringify(withAccount)}`);
  // The lookup's formatted value: the related account's name (the client parses the annotation
  // into `<property>@OData.Community.Display.V1.FormattedValue` and `<property>_Formatted`).
  const annotated = await admin.retrieve({
    collection: "contacts",
    key: contact.contactid,
    select: ["fullname", "_parentcustomerid_value", "statecode"],
    includeAnnotations: "OData.Community.Display.V1.FormattedValue",
  });
  const shown = annotated["_parentcustomerid_value@OData.Community.Display.V1.FormattedValue"] ?? annotated._parentcustomerid_value_Formatted;
  equal(shown, `Deep Parent ${run}`, `the lookup's formatted value in ${JSON.stringify(annotated)}`);
  const state = annotated["statecode@OData.Community.Display.V1.FormattedValue"] ?? annotated.statecode_Formatted;
  equal(state, "Active", "the state's formatted value");
  return `account ${account}, contact ${contact.contactid}`;
});

await step("GrantAccess, then RetrievePrincipalAccess as the grantee", async () => {
  const principalAccess = async () =>
    rights(
      await grantee.callFunction({
        collection: "systemusers",
        key: ids.grantee,
        name: "Microsoft.Dynamics.CRM.RetrievePrincipalAccess",
        parameters: { Target: { "@odata.id": `accounts(${ids.account})` } },
      }),
    );
  const before = await principalAccess();
  check(!before.has("ReadAccess") && !before.has("WriteAccess"), `rep_west already has ${[...before]} on admin's account`);
  await refused(
    () => grantee.retrieve({ collection: "accounts", key: ids.account, select: ["name"] }),
    403,
    ACCESS_DENIED,
    "rep_west reading admin's account before the share",
  );
  await admin.callAction({
    actionName: "GrantAccess",
    action: {
      Target: { "@odata.type": "Microsoft.Dynamics.CRM.account", accountid: ids.account },
      PrincipalAccess: {
        Principal: { "@odata.type": "Microsoft.Dynamics.CRM.systemuser", systemuserid: ids.grantee },
        AccessMask: "ReadAccess, WriteAccess",
      },
    },
  });
  const after = await principalAccess();
  check(after.has("ReadAccess") && after.has("WriteAccess"), `after GrantAccess rep_west has only ${[...after]}`);
  const account = await grantee.retrieve({ collection: "accounts", key: ids.account, select: ["name"] });
  equal(account.accountid, ids.account, "rep_west reading the shared account");
  return [...after].join(", ");
});

await step("impersonation (MSCRMCallerID): admin on behalf of rep_west and of clerk", async () => {
  const asAdmin = await admin.count({ collection: "accounts" });
  const asRep = await admin.count({ collection: "accounts", impersonate: ids.grantee });
  check(asRep > 0 && asRep < asAdmin, `on behalf of rep_west ${asRep} accounts, admin sees ${asAdmin}`);
  // The clerk holds no account privilege: Strata lists no record (docs/semantics.md, D34);
  // Dataverse refuses the list with 0x80040220 (missing prvReadAccount). Either is a refusal.
  let asClerk;
  try {
    asClerk = await admin.count({ collection: "accounts", impersonate: ids.clerk });
    equal(asClerk, 0, "accounts the clerk (no account privilege) sees");
  } catch (error) {
    check(error.status === 403 && error.code === ACCESS_DENIED, `the clerk's list: ${describe(error)}`);
    asClerk = "refused";
  }
  const page = await admin.retrieveMultiple({ collection: "accounts", select: ["name"], impersonate: ids.grantee });
  const visible = new Set((await admin.retrieveAll({ collection: "accounts", select: ["name"] })).value.map((a) => a.accountid));
  check(page.value.every((a) => visible.has(a.accountid)), "on behalf of rep_west, a record admin does not see");
  const repOwn = await grantee.count({ collection: "accounts" });
  equal(asRep, repOwn, "on behalf of rep_west against rep_west's own count");
  const shared = await admin.retrieve({ collection: "accounts", key: ids.account, select: ["name"], impersonate: ids.grantee });
  equal(shared.accountid, ids.account, "the account shared with rep_west, on his behalf");
  await refused(
    () => admin.retrieve({ collection: "accounts", key: ids.account, select: ["name"], impersonate: ids.clerk }),
    403,
    ACCESS_DENIED,
    "admin reading on behalf of the clerk",
  );
  await refused(
    () => admin.create({ collection: "accounts", data: { name: `On behalf ${run}` }, impersonate: ids.clerk }),
    403,
    ACCESS_DENIED,
    "admin creating an account on behalf of the clerk",
  );
  equal(await admin.count({ collection: "accounts" }), asAdmin, "accounts after the refused create");
  await refused(
    () => clerk.retrieve({ collection: "accounts", key: ids.account, select: ["name"], impersonate: ids.admin }),
    403,
    ACCESS_DENIED,
    "the clerk (without prvActOnBehalfOfAnotherUser) acting on behalf of admin",
  );
  return `admin ${asAdmin}, rep_west ${asRep}, clerk ${asClerk}`;
});

await step("a user without the privilege is refused (403 0x80040220) and nothing is written", async () => {
  const before = await admin.count({ collection: "accounts" });
  const original = await admin.retrieve({ collection: "accounts", key: ids.account });
  await refused(
    () => clerk.create({ collection: "accounts", data: { name: `Clerk ${run}`, accountnumber: `CLERK-${run}` } }),
    403,
    ACCESS_DENIED,
    "the clerk creating an account",
  );
  await refused(
    () => clerk.update({ collection: "accounts", key: ids.account, data: { name: `Clerk was here ${run}` } }),
    403,
    ACCESS_DENIED,
    "the clerk updating admin's account",
  );
  await refused(
    () => clerk.deleteRecord({ collection: "accounts", key: ids.account }),
    403,
    ACCESS_DENIED,
    "the clerk deleting admin's account",
  );
  await refused(
    () => clerk.retrieve({ collection: "accounts", key: ids.account }),
    403,
    ACCESS_DENIED,
    "the clerk reading admin's account",
  );
  equal(await admin.count({ collection: "accounts" }), before, "accounts after the refusals");
  await refused(
    () => admin.retrieve({ collection: "accounts", key: `accountnumber='CLERK-${run}'` }),
    404,
    DOES_NOT_EXIST,
    "the account the clerk tried to create",
  );
  const after = await admin.retrieve({ collection: "accounts", key: ids.account });
  equal(after["@odata.etag"], original["@odata.etag"], "the account's ETag after the refusals");
  equal(after.name, original.name, "the account's name after the refusals");
});

console.log(`all ${steps} steps passed against ${serverUrl}${skipBatch ? " ($batch skipped by STRATA_SKIP_BATCH=1)" : ""}`);
