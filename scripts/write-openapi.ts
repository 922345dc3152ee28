/** Writes docs/openapi.json from the route table (`npm run openapi`). */
import { writeFileSync } from 'node:fs';
import { openApiDocument } from '../src/api/openapi.ts';

writeFileSync(new URL('../docs/openapi.json', import.meta.url), JSON.stringify(openApiDocument(), null, 2) + '\n');
