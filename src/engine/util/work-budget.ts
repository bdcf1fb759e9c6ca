/**
 * work-budget: bounded parallelism for recursive tree walks.
 *
 * Each directory runs its entries on a few workers: one of its own, which
 * always exists so the walk progresses however deep it goes, plus extra
 * workers borrowed from a shared budget. Work in flight is therefore at most
 * the budget plus the depth of the tree, never exponential in it, and a
 * directory never waits for a slot its own ancestors hold.
 */
export class WorkBudget {
  constructor(
    private spare: number,
    private readonly perDir: number,
  ) {}

  /**
   * forEach calls fn for every item with up to `perDir` workers. On the first
   * failure it stops starting new items, waits for those running, and throws.
   */
  async forEach<T>(items: readonly T[], fn: (item: T, i: number) => Promise<void>): Promise<void> {
    let next = 0;
    let failure: { err: unknown } | null = null;
    const worker = async (): Promise<void> => {
      while (failure === null && next < items.length) {
        const i = next++;
        try {
          await fn(items[i] as T, i);
        } catch (err) {
          failure ??= { err };
        }
      }
    };
    const extra = Math.max(0, Math.min(items.length - 1, this.perDir - 1, this.spare));
    this.spare -= extra;
    const workers = [worker()];
    for (let k = 0; k < extra; k++) {
      workers.push(
        worker().finally(() => {
          this.spare++;
        }),
      );
    }
    await Promise.all(workers);
    if (failure !== null) throw (failure as { err: unknown }).err;
  }
}
