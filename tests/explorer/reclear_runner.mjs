// Runs the explorer's re-clearing (verify.js) under Node, loaded as the browser loads it,
// an ES module (from its text: no package.json needed):
//
//   node reclear_runner.mjs <verify.js> <documents.json>        reclearChecks of each
//       competition document: its items [{label, ok, detail}], one JSON array per document;
//   node reclear_runner.mjs <verify.js> <books.json> clear      clearScores of each book
//       {mechanism, values, quantities, supply, reserve}: {allocated, payment}.
import { readFileSync } from "node:fs";

const [verifyPath, inputPath, mode] = process.argv.slice(2);
const source = readFileSync(verifyPath, "utf8");
const verify = await import(`data:text/javascript;base64,${Buffer.from(source).toString("base64")}`);
const inputs = verify.parseExact(readFileSync(inputPath, "utf8"));
const out =
  mode === "clear"
    ? inputs.map((b) => {
        const { allocated, payment } = verify.clearScores(b.mechanism, b.values, b.quantities, verify.valueOrder(b.values), b.supply, b.reserve);
        return { allocated, payment };
      })
    : inputs.map((doc) => verify.reclearChecks(doc).map(({ label, ok, detail }) => ({ label, ok, detail })));
process.stdout.write(JSON.stringify(out));
