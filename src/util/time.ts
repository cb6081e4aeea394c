// Waiting with a bound, for the control plane (never the packet path).

/** Resolves when p settles or after ms, whichever comes first; the timer does not outlive it. */
export async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((res) => (timer = setTimeout(res, ms)))]);
  clearTimeout(timer);
}
