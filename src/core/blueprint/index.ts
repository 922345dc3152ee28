/**
 * Blueprints: the original Butter's YAML description of a service (network block,
 * placement, instance size, image, initialization templates) plus `count`. Parsing and
 * validation with positions, and the rendering of each instance's user-data. Pure: the
 * files come in as text (`src/cli/blueprint-bundle.ts` reads them).
 */
import { BlueprintError } from './error.ts';
import type { Blueprint, RenderInput } from './types.ts';
import { validate } from './validate.ts';
import { YamlSource } from './yaml-source.ts';
import { renderUserData } from './render.ts';

export { BlueprintError } from './error.ts';
export type { Blueprint, Builtins, InitFile, RenderInput, VarSpec } from './types.ts';
export { renderUserData } from './render.ts';
export { isVarName, TEMPLATE_BUILTINS } from './builtins.ts';
export { imageMatches, isImageGlob } from './image-glob.ts';
export { DEFAULT_AVAILABILITY_ZONES, DEFAULT_SUBNETWORK_MAX_INSTANCES } from './validate.ts';
export { contentType } from './mime.ts';

/**
 * Parses and validates YAML text. Throws a BlueprintError: malformed YAML with yaml's own
 * message; otherwise every problem found in the file's order, one per line of the message (the error's fields
 * are the first one's, `problems` holds them all).
 */
export function parseBlueprint(text: string, file: string): Blueprint {
  const src = new YamlSource(text, file);
  const bp = validate(src);
  if (src.problems.length > 0) {
    // In the file's order, whatever order the checks ran in (stable: same place, check order).
    const byPlace = [...src.problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
    throw BlueprintError.all(byPlace);
  }
  return bp;
}

/** Every template file the blueprint names (initialization[].path), as written. */
export function templatePaths(bp: Blueprint): string[] {
  return bp.initialization.map((f) => f.path);
}

/** Checks rendering (instance 0, or whichever builtins say) before anything is created: same errors. */
export function checkRender(bp: Blueprint, input: Omit<RenderInput, 'builtins'> & { builtins: RenderInput['builtins'] }): void {
  renderUserData(bp, input);
}

/** Where the value at a key path starts in a blueprint's text (for errors found outside this module). */
export function blueprintPosition(text: string, path: (string | number)[]): { line: number; col: number } | undefined {
  return new YamlSource(text, '').positionOf(path);
}
