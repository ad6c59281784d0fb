// Prints vitest's JSON result as the plain closing line CI reads: "N passed, N failed".
// Exits non-zero when anything failed or nothing ran.
const { readFileSync, existsSync } = require('node:fs');
const file = process.argv[2] || 'test-results.json';
if (!existsSync(file)) {
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const report = JSON.parse(readFileSync(file, 'utf8'));
const passed = report.numPassedTests ?? 0;
const failed = report.numFailedTests ?? 0;
// A file that failed to load has no test results of its own: count it as one failure.
const brokenFiles = (report.testResults ?? []).filter((r) => r.status === 'failed' && (r.assertionResults ?? []).length === 0).length;
console.log(`${passed} passed, ${failed + brokenFiles} failed`);
process.exit(failed + brokenFiles > 0 || passed === 0 ? 1 : 0);
