// Shared by the TypeScript scenarios (ts_v3.mjs, ts_platform.mjs): checks that say what they got, the
// connection settings, and the runner that reports OK / FAIL / ERROR with the step that failed.
// envs.scenario_command copies this file next to the scenario.
let currentStep = "setup";

export class CheckFailed extends Error {}

export function step(name) {
  currentStep = name;
  console.log(`--> ${name}`);
}

export function show(value) {
  let text;
  try {
    text = JSON.stringify(value, null, 1);
  } catch {
    text = String(value);
  }
  if (text === undefined) text = String(value);
  return text.length < 4000 ? text : `${text.slice(0, 4000)} ...(truncated)`;
}

export function fail(message, value) {
  throw new CheckFailed(value === undefined ? message : `${message}\n    got: ${show(value)}`);
}

export function check(condition, message, value) {
  if (!condition) fail(message, value);
}

function deepEqual(a, b) {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v) {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])]));
  }
  return v;
}

export function checkEq(actual, expected, what) {
  if (!deepEqual(actual, expected)) {
    fail(`${what}: expected ${show(expected)}, got ${show(actual)}`);
  }
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function checkUuid(value, what) {
  check(typeof value === "string" && UUID_RE.test(value), `${what} is not a UUID`, value);
  return value;
}

export function checkDate(value, what) {
  check(typeof value === "string" && !Number.isNaN(new Date(value).getTime()), `${what} is not a date`, value);
}

export function checkKeys(obj, keys, what) {
  check(obj && typeof obj === "object" && !Array.isArray(obj), `${what} should be a JSON object`, obj);
  const missing = keys.filter((k) => !(k in obj));
  check(missing.length === 0, `${what} lacks keys ${JSON.stringify(missing)}`, obj);
}

export async function expectReject(ErrorClass, fn, what) {
  let result;
  try {
    result = await fn();
  } catch (err) {
    if (err instanceof ErrorClass) {
      console.log(`    ok: ${what} rejected with ${err.name}: ${String(err.message).slice(0, 160)}`);
      return err;
    }
    fail(`${what}: expected ${ErrorClass.name}, got ${err && err.name}: ${err && err.message}`);
  }
  fail(`${what}: expected ${ErrorClass.name}, but the call resolved`, result);
}

export function env() {
  const url = process.env.MEMSERVER_URL;
  const key = process.env.MEMSERVER_KEY;
  if (!url || !key) {
    console.error("MEMSERVER_URL and MEMSERVER_KEY must be set");
    process.exit(3);
  }
  return { url: url.replace(/\/+$/, ""), key };
}

// Runs `scenario(mode)` (mode: argv[2], default "full") and exits 0 (OK), 1 (a check failed) or 2 (an error).
export async function run(name, scenario) {
  const mode = process.argv[2] || "full";
  const started = Date.now();
  try {
    await scenario(mode);
    console.log(`OK [${name} ${mode}] in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    process.exit(0);
  } catch (err) {
    if (err instanceof CheckFailed) {
      console.error(`FAIL [${name} ${mode}] [${currentStep}]: ${err.message}`);
      process.exit(1);
    }
    console.error(err);
    console.error(`ERROR [${name} ${mode}] [${currentStep}]: unexpected ${err && err.name}: ${err && err.message}`);
    process.exit(2);
  }
}
