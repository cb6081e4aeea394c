// Writes the JSON Schemas of configs/ (the global configuration and task
// files) from their consts in src/config/, for editors and other tools:
//
//   npm run build && node dist/scripts/gen-config-schema.js
//
// test/config/global.test.ts fails when the files and the consts differ.

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { schemaFiles } from '../src/config/global-schema.js';

for (const [name, schema] of Object.entries(schemaFiles())) {
  const file = fileURLToPath(new URL(`../../configs/${name}`, import.meta.url));
  writeFileSync(file, `${JSON.stringify(schema, null, 2)}\n`);
  process.stdout.write(`wrote ${file}\n`);
}
