/**
 * `vm create` of an image still being built (`butter up`'s tiny image, right after start):
 * the API refuses it with a 409 naming `image`; the CLI then waits for the image, as a user
 * who just started Butter expects, bounded by the build's own limit, and says so on stderr.
 */
import { ButterError, type Client } from '../sdk/client.ts';
import { progress, progressDone } from './output.ts';

/** images/tiny/build.sh runs for at most 10 minutes (daemon/tiny-image.ts). */
export const IMAGE_WAIT_S = 600;

/** True when `e` is the refusal of an image that is being built. */
export function isImageBuilding(e: unknown): boolean {
  return e instanceof ButterError && e.status === 409 && e.field === 'image';
}

/** Polls until the image is ready; fails naming it when its build ends without it, or at the bound. */
export async function waitForImage(c: Client, image: string, timeoutS = IMAGE_WAIT_S, pollMs = 1_000): Promise<void> {
  const end = Date.now() + timeoutS * 1000;
  progress(`image ${image} is being built; waiting for it (at most ${Math.round(timeoutS / 60)} min)`);
  try {
    for (;;) {
      let status: string;
      try {
        status = (await c.call('getImage', { params: { name: image } })).status;
      } catch (e) {
        if (e instanceof ButterError && e.status === 404) throw new ButterError(404, 'not_found', `image ${image}: its build ended without making it (see the log of butter up)`, 'image');
        throw e;
      }
      if (status === 'ready') return;
      if (Date.now() > end) throw new ButterError(409, 'conflict', `image ${image} is still being built after ${timeoutS} s`, 'image');
      await new Promise((r) => setTimeout(r, pollMs));
    }
  } finally {
    progressDone();
  }
}
