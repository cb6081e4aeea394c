// When to restart a child that died, and when to give up (the pm2/nginx
// habit): exponential backoff from `initialMs` doubling to `maxMs`, back to
// `initialMs` once a child has run `healthyMs`; more than `budget` restarts
// within `windowMs` is a crash loop, and the task is failed instead.

export interface RestartSettings {
  initialMs: number;
  maxMs: number;
  healthyMs: number;
  budget: number;
  windowMs: number;
}

export const DEFAULT_RESTART: RestartSettings = { initialMs: 100, maxMs: 10_000, healthyMs: 60_000, budget: 5, windowMs: 60_000 };

export class RestartPolicy {
  private delay: number;
  /** Times of the restarts within the window, oldest first. */
  private readonly recent: number[] = [];

  constructor(private readonly s: RestartSettings = DEFAULT_RESTART) {
    this.delay = s.initialMs;
  }

  /**
   * A child that started at `startedAt` died at `now`: the delay before its
   * restart, or null when the restart budget is spent.
   */
  next(startedAt: number, now: number): number | null {
    if (now - startedAt >= this.s.healthyMs) this.delay = this.s.initialMs;
    while (this.recent.length > 0 && now - this.recent[0]! > this.s.windowMs) this.recent.shift();
    if (this.recent.length >= this.s.budget) return null;
    this.recent.push(now);
    const d = this.delay;
    this.delay = Math.min(this.delay * 2, this.s.maxMs);
    return d;
  }
}
