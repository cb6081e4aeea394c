// Imported first by `otus` (src/cli/otus.ts): for `otus daemon`, holds the
// supervisor's young generation before the other modules load, as loading
// them alone grows it to 4 MiB a semi-space, which V8 seldom gives back, and
// sets the flags that keep its code lean (interpreted, compiled lazily).

import { holdYoungGeneration, leanCode } from '../supervisor/young-generation.js';

if (process.argv.slice(2).find((a) => !a.startsWith('-')) === 'daemon') {
  holdYoungGeneration();
  leanCode();
}
